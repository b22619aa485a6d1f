"""SYNTHETIC Zhihu-style questions, answers and summaries, written by pixiu's authors: no real post or user.

Every record is a crawled-question record (`question_id`, `title`, `detail`, `answers`) with a reference
`summary` and `"synthetic": true`. Each question has 2 or 3 distinct points (pieces of advice) carried by
its most up-voted answers, plus low-voted padding (chit-chat, or a point said again). Answers are listed in
a shuffled order, as the site lists them, so the formatter's top-k by votes matters. The summary names the
points in vote order: "高赞建议A，其次是B(和C)。" Everything is short, so that a whole example fits
in about 256 tokens of a small model. The shipped sample_data/zhihu_synthetic.jsonl is

    python -m pixiu_zhihu.synthetic --output plugins/zhihu/pixiu_zhihu/sample_data/zhihu_synthetic.jsonl

and a test checks that regenerating it gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

DEFAULT_COUNT = 400
DEFAULT_SEED = 2024
THREE_POINT_SHARE = 0.4

Topic = tuple[tuple[str, ...], tuple[tuple[str, tuple[str, str]], ...]]
TOPICS: tuple[Topic, ...] = (
    (
        ("如何坚持每天早起？", "怎样才能早上不赖床？"),
        (
            ("早点睡觉", ("关键是早点睡觉，十一点前放下手机。", "早点睡觉，睡够了自然就醒得来。")),
            ("把闹钟放远", ("把闹钟放远，必须下床才能关掉。", "闹钟放到房间另一头，起身去关就醒了。")),
            ("给早起一个期待", ("给早起一个期待，比如一顿好早餐。", "早上安排件喜欢的事，就有动力起床。")),
            ("逐步提前", ("每天提前十分钟，逐步提前作息。", "别一步到位，逐步提前起床时间。")),
        ),
    ),
    (
        ("新手怎么开始跑步？", "跑步小白如何入门？"),
        (
            ("先走跑结合", ("先走跑结合，跑一分钟走两分钟。", "刚开始走跑结合，别一口气硬跑。")),
            ("买双合适的跑鞋", ("买双合适的跑鞋，能少受很多伤。", "跑鞋一定要合脚，别穿板鞋跑。")),
            ("控制配速", ("控制配速，能边跑边说话就对了。", "别跑太快，配速慢到能聊天为好。")),
            ("跑后拉伸", ("跑后一定要拉伸，第二天腿不酸。", "每次跑完拉伸十分钟，防止受伤。")),
        ),
    ),
    (
        ("如何提高英语听力？", "英语听力差怎么练？"),
        (
            ("精听加听写", ("精听加听写，一句句听到能写出来。", "每天精听一段，逐句听写最有效。")),
            ("多听感兴趣的材料", ("多听感兴趣的材料，比如美剧播客。", "找喜欢的播客听，兴趣能让你坚持。")),
            ("跟读模仿", ("跟读模仿原声，发音准了也更好懂。", "边听边跟读，模仿语调和连读。")),
            ("每天坚持", ("每天坚持半小时，比周末突击强。", "听力靠积累，每天坚持听一点。")),
        ),
    ),
    (
        ("有什么省钱的好习惯？", "年轻人怎么攒下钱？"),
        (
            ("每月先存后花", ("发工资先存一部分，剩下的再花。", "每月先存后花，强制储蓄最管用。")),
            ("记账", ("坚持记账，才知道钱花在哪里。", "用软件记账，一个月就能看清开销。")),
            ("少点外卖", ("少点外卖，自己做饭能省一大半。", "外卖又贵又不健康，自己带饭吧。")),
            ("买前等三天", ("想买的东西等三天，冲动就过去了。", "购物车放三天再决定，能省不少。")),
        ),
    ),
    (
        ("怎样才能睡个好觉？", "失眠了有什么办法？"),
        (
            ("睡前不看手机", ("睡前一小时不看手机，蓝光影响入睡。", "手机放远点，睡前不要刷视频。")),
            ("固定作息", ("固定作息，周末也按时起床。", "每天同一时间睡和起，生物钟就稳了。")),
            ("白天多运动", ("白天多运动，晚上自然容易困。", "下午去跑跑步，晚上睡得特别沉。")),
            ("下午不喝咖啡", ("下午别喝咖啡和浓茶。", "咖啡因要好几个小时才代谢完，下午别喝。")),
        ),
    ),
    (
        ("如何高效背单词？", "背单词总是忘怎么办？"),
        (
            ("按遗忘曲线复习", ("按遗忘曲线复习，隔几天再过一遍。", "用间隔重复，按遗忘曲线安排复习。")),
            ("在句子里记", ("在句子里记单词，比单背词表牢。", "结合例句记，知道怎么用才记得住。")),
            ("每天少量", ("每天少量背，二十个就够了。", "别贪多，每天少量但天天不断。")),
            ("多读原文", ("多读原文，在阅读里反复遇见单词。", "大量阅读原文，单词自然就熟了。")),
        ),
    ),
    (
        ("第一次养猫要准备什么？", "新手养猫需要注意什么？"),
        (
            ("备好猫砂盆", ("先备好猫砂盆和猫砂，放安静角落。", "猫砂盆最要紧，猫天生会用。")),
            ("选好猫粮", ("选好猫粮，看配料表肉排第一。", "猫粮别乱买，要选肉含量高的。")),
            ("及时打疫苗", ("到家一周后带去打疫苗和驱虫。", "及时打疫苗，驱虫也别忘了。")),
            ("封好窗户", ("一定封好窗户，猫坠楼很常见。", "窗户装纱网封好，防止猫掉下去。")),
        ),
    ),
    (
        ("怎么克服拖延症？", "总是拖延怎么办？"),
        (
            ("把任务拆小", ("把任务拆小，先做五分钟再说。", "大任务拆成小步骤，就不那么怕了。")),
            ("设定截止时间", ("给自己设定截止时间，越具体越好。", "每件事都写上截止时间，逼自己完成。")),
            ("远离手机", ("干活时把手机放另一个房间。", "远离手机，专注力立刻回来。")),
            ("先做最难的", ("早上先做最难的那件事。", "先啃最难的，剩下的就轻松了。")),
        ),
    ),
    (
        ("新手怎么学做饭？", "厨房小白如何学会做菜？"),
        (
            ("从家常菜学起", ("从番茄炒蛋这种家常菜学起。", "先学几道家常菜，简单又常吃。")),
            ("跟着视频做", ("跟着视频做，火候步骤一看就懂。", "找个美食博主，跟着视频一步步做。")),
            ("备好调料", ("先备好调料，盐糖生抽老抽就够。", "基础调料备齐，做菜才不手忙脚乱。")),
            ("多做几次", ("同一道菜多做几次，手感就来了。", "别怕失败，多做几次自然熟练。")),
        ),
    ),
    (
        ("如何提高写作能力？", "写文章没思路怎么办？"),
        (
            ("多读好文章", ("多读好文章，留意别人怎么开头。", "先多读，好文章读多了自然会写。")),
            ("每天写一点", ("每天写一点，哪怕三百字也行。", "坚持每天写，手感是练出来的。")),
            ("先列提纲", ("动笔前先列提纲，思路就清楚了。", "先列提纲再写，不会写着写着跑题。")),
            ("写完再改", ("先写完再改，别边写边删。", "初稿随便写，写完再改才是关键。")),
        ),
    ),
    (
        ("怎么缓解久坐带来的腰疼？", "上班族腰疼怎么办？"),
        (
            ("每小时起来活动", ("每小时起来活动五分钟。", "定个闹钟，每小时起身走一走。")),
            ("调整坐姿", ("调整坐姿，腰后垫个靠垫。", "椅子调好高度，坐姿端正腰不累。")),
            ("练核心力量", ("练核心力量，平板支撑很有用。", "核心力量强了，腰就不容易疼。")),
            ("疼得厉害就就医", ("疼得厉害就就医，别硬扛。", "持续疼痛要就医，排除腰突。")),
        ),
    ),
    (
        ("第一次出国旅行要注意什么？", "出国自由行有什么经验？"),
        (
            ("提前办好签证", ("提前办好签证，至少留一个月。", "签证最耽误事，一定要提前办。")),
            ("备份证件", ("护照拍照备份，存在手机和邮箱。", "证件复印件和电子备份都要有。")),
            ("买旅行保险", ("一定买旅行保险，看病太贵了。", "旅行保险别省，生病时救命。")),
            ("准备转换插头", ("带个转换插头，各国插座不一样。", "提前查好插座标准，带转换插头。")),
        ),
    ),
    (
        ("怎么才能练好字？", "成年人练字有用吗？"),
        (
            ("先练楷书", ("先练楷书打基础，再学行书。", "从楷书入手，笔画结构最规范。")),
            ("选一本字帖", ("选一本喜欢的字帖，专心临一本。", "认准一本字帖临到底，别总换。")),
            ("控笔练习", ("先做控笔练习，线条稳了字才好看。", "每天练横竖撇捺，控笔是基础。")),
            ("每天练半小时", ("每天练半小时，三个月见效果。", "贵在坚持，每天半小时就够。")),
        ),
    ),
    (
        ("如何准备一场面试？", "面试前应该做哪些准备？"),
        (
            ("研究公司业务", ("提前研究公司业务和岗位要求。", "把公司官网和产品都看一遍。")),
            ("准备自我介绍", ("准备好一分钟自我介绍，多练几遍。", "自我介绍要提前写好背熟。")),
            ("模拟问答", ("找朋友模拟问答，练练临场反应。", "把常见问题列出来，模拟回答一遍。")),
            ("准备反问问题", ("最后准备两个反问问题。", "面试官问你有什么问题时，别说没有。")),
        ),
    ),
    (
        ("怎么养好一盆绿萝？", "绿萝叶子发黄怎么办？"),
        (
            ("见干见湿浇水", ("浇水见干见湿，别天天浇。", "土干了再浇透，积水会烂根。")),
            ("放在散射光处", ("放在散射光处，别让太阳直晒。", "喜阴不喜晒，放窗边有散光就好。")),
            ("定期施肥", ("春夏定期施点稀薄的肥。", "一个月施一次肥，叶子更绿。")),
            ("剪掉黄叶", ("黄叶及时剪掉，省得消耗养分。", "发黄的叶子剪掉，新叶长得快。")),
        ),
    ),
    (
        ("怎样提高学习效率？", "学习总是走神怎么办？"),
        (
            ("番茄工作法", ("试试番茄工作法，学二十五分钟歇五分钟。", "用番茄钟，专注一段再休息。")),
            ("明确每天目标", ("每天明确目标，写在纸上逐条完成。", "前一晚列好第二天要学的内容。")),
            ("主动回忆", ("学完合上书，主动回忆讲一遍。", "主动回忆比反复看书有用得多。")),
            ("保证睡眠", ("保证睡眠，熬夜学习效率最低。", "睡够了脑子才转得动。")),
        ),
    ),
    (
        ("如何开始健身？", "健身小白怎么入门？"),
        (
            ("从自重训练开始", ("先从俯卧撑深蹲这类自重训练开始。", "自重训练就够新手练一阵了。")),
            ("学会标准动作", ("先学会标准动作，再加重量。", "动作标准最重要，宁轻勿错。")),
            ("吃够蛋白质", ("吃够蛋白质，鸡蛋牛奶鸡胸肉。", "练了不长肉，多半是蛋白质不够。")),
            ("给肌肉休息", ("同一部位隔天练，给肌肉休息。", "肌肉是休息时长的，别天天练。")),
        ),
    ),
    (
        ("怎么和父母好好沟通？", "和父母观念不同怎么办？"),
        (
            ("先听他们说完", ("先耐心听他们说完，再讲自己的想法。", "别急着反驳，先听父母说完。")),
            ("多分享日常", ("平时多分享日常，他们就少担心。", "常打电话聊聊日常，沟通自然顺。")),
            ("别在气头上谈", ("别在气头上谈，冷静了再说。", "吵起来就停，等都冷静再谈。")),
            ("用行动证明", ("与其争论，不如用行动证明。", "把自己过好，就是最好的说服。")),
        ),
    ),
    (
        ("怎么做一份好的PPT？", "PPT做得丑怎么改？"),
        (
            ("一页一个观点", ("一页只讲一个观点，别堆文字。", "每页一个核心观点，观众才记得住。")),
            ("统一配色字体", ("配色不超过三种，字体统一。", "统一配色和字体，立刻整洁。")),
            ("多用图表", ("数据多用图表，比表格直观。", "能用图就别用字，图表更清楚。")),
            ("留足留白", ("留足留白，页面别塞太满。", "敢于留白，版面才显得高级。")),
        ),
    ),
    (
        ("第一次租房要注意什么？", "租房有哪些坑？"),
        (
            ("核实房东身份", ("先核实房东身份和房产证。", "一定看房产证，确认是房东本人。")),
            ("合同写清楚", ("合同写清楚押金和维修责任。", "押金怎么退要在合同里写明。")),
            ("拍照留证", ("入住前拍照留证，家具损坏都拍下。", "交房时拍视频留证，退租不扯皮。")),
            ("看看周边交通", ("看看周边交通，通勤别超一小时。", "实地走一趟通勤路线再决定。")),
        ),
    ),
    (
        ("如何培养阅读习惯？", "怎么才能读完一本书？"),
        (
            ("从感兴趣的书读起", ("从感兴趣的书读起，别硬啃名著。", "先读自己喜欢的书，读得下去最重要。")),
            ("每天固定时间读", ("每天固定时间读，比如睡前半小时。", "把阅读放进日程，每天固定时间。")),
            ("随身带本书", ("随身带本书，碎片时间也能读。", "通勤时拿出书，一周能读不少。")),
            ("读完写几句笔记", ("读完写几句笔记，记得更牢。", "每章写两句感想，读得更深。")),
        ),
    ),
    (
        ("怎样减肥不反弹？", "减肥总是反弹怎么办？"),
        (
            ("控制热量缺口", ("控制热量缺口，每天少吃三百大卡。", "减肥核心是热量缺口，别节食过猛。")),
            ("坚持力量训练", ("坚持力量训练，肌肉多了代谢高。", "只做有氧容易反弹，加上力量训练。")),
            ("少喝含糖饮料", ("少喝奶茶可乐这类含糖饮料。", "戒掉含糖饮料，一个月就瘦几斤。")),
            ("慢慢来", ("一个月减两三斤就好，慢慢来。", "别求快，慢慢减才不容易反弹。")),
        ),
    ),
    (
        ("怎么学好一门编程语言？", "零基础怎么学编程？"),
        (
            ("边学边写代码", ("边学边写代码，光看教程没用。", "每学一个知识点就动手写一遍。")),
            ("做个小项目", ("做个小项目，比刷题进步快。", "找个感兴趣的小项目做完整。")),
            ("学会查文档", ("学会查官方文档和报错信息。", "遇到问题先查文档，再去搜索。")),
            ("读别人的代码", ("多读别人的代码，学写法和结构。", "读优秀开源代码，提高很快。")),
        ),
    ),
    (
        ("怎样才能不怕当众讲话？", "一上台就紧张怎么办？"),
        (
            ("充分准备", ("充分准备，内容熟了就不慌。", "讲稿练到能脱稿，紧张就少一半。")),
            ("对着镜子练", ("对着镜子练，或者录下来看。", "录视频回看，找出自己的小毛病。")),
            ("深呼吸放松", ("上台前深呼吸，放慢语速。", "紧张时深呼吸几次，心跳就慢下来。")),
            ("多找机会讲", ("多找机会讲，次数多了就不怕。", "从小范围分享开始，多讲几次就好。")),
        ),
    ),
)
"""(question titles, ((summary phrase, (answer sentence, answer sentence)), …)) per topic."""

_OPENERS = ("", "", "我的经验是", "个人觉得，", "说下我的做法：", "亲测：", "最有用的一条：")
_TAILS = ("", "", "", "亲测有效。", "供参考。", "坚持下来效果很明显。", "就这么简单。")
_PADDING = (
    "这个问题我也想知道，先关注一下。",
    "说得容易做起来难，大家加油吧。",
    "收藏了，回头慢慢看大家的回答。",
    "看了一圈回答，感觉都挺有道理的。",
    "楼上说得对，我就不重复了。",
    "同样的困扰，蹲一个好答案。",
)
_DETAILS = ("", "", "", "求推荐靠谱的方法。", "试过几次都没成功。", "新手一枚，求指教。", "在线等，挺急的。")
_NICKNAMES = (
    "晨跑的猫",
    "路人甲",
    "老王",
    "一只咸鱼",
    "小林同学",
    "南方的风",
    "山间明月",
    "匿名用户",
    "阿杰",
    "豆豆妈",
)


def generate(n: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Generate `n` distinct synthetic question records, the same ones for the same seed.

    Args:
        n: Number of records.
        seed: Seed of the random generator; the output depends on nothing else.

    Returns:
        Records with `question_id`, `title`, `detail`, `answers`, `summary` and `"synthetic": true`.
    """
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(records) < n:
        record = _question(rng, f"syn-{len(records) + 1:04d}")
        key = record["title"] + "|" + "|".join(sorted(a["text"] for a in record["answers"]))
        if key in seen:
            continue
        seen.add(key)
        records.append(record)
    return records


def to_jsonl(records: list[dict[str, Any]]) -> str:
    """Serialise records as UTF-8 JSON lines, exactly as the shipped sample file is written."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _question(rng: random.Random, question_id: str) -> dict[str, Any]:
    """One question: its points carried by the top-voted answers, padding below them, shuffled."""
    titles, points = rng.choice(TOPICS)
    chosen = rng.sample(points, 3 if rng.random() < THREE_POINT_SHARE else 2)
    votes = sorted(rng.sample(range(40, 3000), len(chosen)), reverse=True)
    texts = [_answer_text(rng, rng.choice(sentences)) for _, sentences in chosen]
    padding_votes = rng.randint(0, 30)
    for _ in range(rng.randint(1, 3) if len(chosen) == 2 else rng.randint(0, 3)):
        if rng.random() < 0.5:  # the same point again, said by someone less voted
            texts.append(_answer_text(rng, rng.choice(rng.choice(chosen)[1])))
        else:
            texts.append(rng.choice(_PADDING))
        votes.append(padding_votes)
        padding_votes = max(padding_votes - rng.randint(1, 10), 0)
    answers = [
        {
            "answer_id": f"{question_id}-{index + 1}",
            "author": rng.choice(_NICKNAMES),
            "text": text,
            "voteup_count": vote,
            "comment_count": vote // rng.randint(8, 30),
            "created_time": 1704067200 + rng.randint(0, 365 * 86400),
        }
        for index, (text, vote) in enumerate(zip(texts, votes, strict=True))
    ]
    rng.shuffle(answers)
    phrases = [phrase for phrase, _ in chosen]
    summary = f"高赞建议{phrases[0]}，其次是" + "和".join(phrases[1:]) + "。"
    return {
        "question_id": question_id,
        "title": rng.choice(titles),
        "detail": rng.choice(_DETAILS),
        "answers": answers,
        "summary": summary,
        "synthetic": True,
    }


def _answer_text(rng: random.Random, sentence: str) -> str:
    """An answer built around one sentence: an optional opener and an optional closing remark."""
    return rng.choice(_OPENERS) + sentence + rng.choice(_TAILS)


def main(argv: list[str] | None = None) -> None:
    """Write synthetic records as JSONL to stdout or to --output."""
    parser = argparse.ArgumentParser(prog="python -m pixiu_zhihu.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_COUNT, help="number of records")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = to_jsonl(generate(args.n, args.seed))
    if args.output is None:
        sys.stdout.buffer.write(text.encode("utf-8"))
    else:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
