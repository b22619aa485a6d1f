"""SYNTHETIC charge-prediction records, written by pixiu's authors: no real case, person or judgment.

Each record is CAIL2018-shaped (`fact`, `meta.accusation`, `meta.relevant_articles`,
`meta.term_of_imprisonment`) and marked `"synthetic": true`. Facts are filled from a few hand-written
templates per charge with random names, places, dates and amounts, and keep the cue that tells the charge
apart (秘密窃取 vs 当场夺取, 醉酒 vs 肇事致死). About 10% of records describe two offences by the same
defendant. Each charge's article is the PRC Criminal Law article that defines it, and its term is drawn
within that article's basic sentencing range (see `ARTICLES`, `TERM_MONTHS`); the terms come from a
random stream of their own, so the facts and charges are those of the charges-only sample of earlier
versions. The shipped sample_data/cail_synthetic.jsonl is

    python -m pixiu_law.synthetic --output plugins/law/pixiu_law/sample_data/cail_synthetic.jsonl

and a test checks that regenerating it gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

DEFAULT_COUNT = 1500
DEFAULT_SEED = 2018
TWO_CHARGE_SHARE = 0.1

TEMPLATES: dict[str, tuple[str, ...]] = {
    "盗窃": (
        "{date}{hour}，被告人{name}在{place}一家{shop}内趁店员不备，窃取{item}，价值人民币{amount}元。",
        "{date}凌晨，被告人{name}撬开{place}{road}附近村民{victim}家房门，盗走现金{amount}元及{item}。",
        "{date}至{date2}，被告人{name}先后{count}次在{place}{venue}扒窃他人手机，共计价值{amount}元。",
        "被告人{name}于{date}在{place}{venue}，趁{victim}熟睡之机秘密窃取其{item}，经鉴定价值{amount}元。",
    ),
    "故意伤害": (
        "{date}{hour}，被告人{name}在{place}{venue}因琐事与被害人{victim}发生争执，持{weapon}将其头部打伤。"
        "经鉴定，{victim}的损伤程度为{injury}。",
        "被告人{name}因宅基地纠纷与邻居{victim}积怨，于{date}持{weapon}击打{victim}，致其肋骨骨折，经鉴定为{injury}。",
        "{date}，被告人{name}酒后在{place}{venue}与{victim}发生口角，用拳头殴打{victim}面部，致其{injury}。",
    ),
    "诈骗": (
        "{date}，被告人{name}冒充{role}，通过微信以{pretext}为由，骗取被害人{victim}人民币{amount}元。",
        "被告人{name}虚构能帮人办理入学指标的事实，于{date}在{place}骗取被害人{victim}{amount}元，后挥霍一空。",
        "{date}至{date2}，被告人{name}在网上发布虚假的{goods}出售信息，收取{count}名被害人货款共计{amount}元后拒不发货。",
    ),
    "危险驾驶": (
        "{date}{hour}，被告人{name}饮酒后驾驶{car}行驶至{place}{road}时被民警查获。经检验，其血液中乙醇含量为{bac}mg/100ml。",
        "被告人{name}于{date}{hour}醉酒驾驶{car}，在{place}{road}撞上路边护栏。经鉴定，其血液酒精含量为{bac}mg/100ml。",
        "{date}夜间，被告人{name}驾驶{car}在{place}{road}与他人追逐竞驶，多次超速并强行变道，情节恶劣。",
    ),
    "交通肇事": (
        "{date}{hour}，被告人{name}驾驶{car}行至{place}{road}路口时未避让行人，将行人{victim}撞倒，"
        "致其经抢救无效死亡。经认定，{name}负事故全部责任。",
        "被告人{name}于{date}驾驶{car}超速行驶，在{place}{road}与{victim}驾驶的电动自行车相撞，致{victim}死亡，{name}负主要责任。",
        "{date}，被告人{name}驾驶{car}在{place}{road}违章变道，与对向车辆相撞，致一人死亡，{name}肇事后弃车逃逸。",
    ),
    "抢劫": (
        "{date}{hour}，被告人{name}在{place}{road}持{weapon}拦住被害人{victim}，以暴力相威胁，劫取其现金{amount}元及手机一部。",
        "被告人{name}伙同{name2}于{date}将被害人{victim}拖至{place}僻静处殴打，强行抢走其{item}。",
        "{date}夜，被告人{name}尾随下班的{victim}，在{place}小巷内用刀顶住其腰部，抢得现金{amount}元。",
    ),
    "寻衅滋事": (
        "{date}{hour}，被告人{name}酒后在{place}{venue}无故辱骂、殴打店员{victim}，并砸坏店内桌椅，造成恶劣影响。",
        "被告人{name}为逞强耍横，于{date}在{place}{venue}随意殴打路人{victim}，致其轻微伤。",
        "{date}起，被告人{name}在{place}农贸市场多次强拿硬要摊主{victim}等人的水果、香烟，拒不付款。",
    ),
    "容留他人吸毒": (
        "{date}，被告人{name}在其位于{place}的出租屋内，容留{name2}、{name3}吸食甲基苯丙胺（冰毒），后被民警当场查获。",
        "被告人{name}先后{count}次在其经营的{place}{hotel}房间内提供场所，供{name2}等人吸食毒品。",
        "{date}晚，被告人{name}在自家住处提供吸毒工具，容留吸毒人员{name2}吸食海洛因。",
    ),
    "走私、贩卖、运输、制造毒品": (
        "{date}，被告人{name}在{place}{venue}以{price}元的价格向{name2}贩卖甲基苯丙胺{gram}克，交易后被民警抓获。",
        "被告人{name}于{date}携带海洛因{gram}克乘坐大巴从{city}前往{city2}，在高速公路检查站被查获。",
        "{date}，被告人{name}通过微信联系吸毒人员{name2}，在{place}将{gram}克冰毒以{price}元卖给对方。",
    ),
    "开设赌场": (
        "{date}至{date2}，被告人{name}在{place}一民房内摆放赌桌，组织他人以“牌九”方式赌博，抽头渔利{amount}元。",
        "被告人{name}建立微信群，组织群成员以抢红包方式赌博，从中抽头，累计获利{amount}元。",
        "{date}起，被告人{name}在其经营的{place}棋牌室内设置赌博机{count}台供他人赌博，非法获利{amount}元。",
    ),
    "信用卡诈骗": (
        "{date}，被告人{name}捡到被害人{victim}的信用卡，在{place}的ATM机上冒用该卡取款{amount}元。",
        "被告人{name}使用伪造的信用卡在{city}多家商场刷卡消费，共计人民币{amount}元。",
        "被告人{name}持本人信用卡恶意透支{amount}元，经银行多次催收，超过三个月仍拒不归还。",
    ),
    "掩饰、隐瞒犯罪所得、犯罪所得收益": (
        "{date}，被告人{name}明知{name2}出售的{item}系盗窃所得，仍以{amount}元的低价收购后转卖。",
        "被告人{name}经营二手手机店，{date}在明知系赃物的情况下，收购他人盗窃的手机{count}部。",
        "{date}，被告人{name}明知摩托车系{name2}抢劫所得，仍帮助其藏匿并代为销售，获利{amount}元。",
    ),
    "故意毁坏财物": (
        "{date}{hour}，被告人{name}因与{victim}有矛盾，用石块砸坏{victim}停放在{place}的{car}，经鉴定损失{amount}元。",
        "被告人{name}于{date}深夜，持刀划破{place}小区内{count}辆轿车的轮胎，造成财物损失共计{amount}元。",
        "{date}，被告人{name}因索要工钱未果，砸毁{victim}商店的玻璃门和货架，造成损失{amount}元。",
    ),
    "非法持有毒品": (
        "{date}，民警在{place}{hotel}房间内抓获被告人{name}，当场查获其持有的甲基苯丙胺{held}克。",
        "被告人{name}于{date}驾车行经{place}{road}时被民警拦检，从其车内查获海洛因{held}克，无证据证明其贩卖。",
        "{date}，公安机关在被告人{name}位于{place}的住处查获冰毒{held}克，{name}供称系购买后留作自己吸食。",
    ),
    "职务侵占": (
        "被告人{name}系{city}{company}的收银员，{date}至{date2}间利用收银职务便利，将营业款{amount}元占为己有。",
        "被告人{name}在担任{company}仓库保管员期间，利用职务便利多次私自变卖公司的{goods}，侵占货款{amount}元。",
        "被告人{name}作为{company}的销售员，{date}收取客户货款{amount}元后未交回公司，用于个人消费。",
    ),
    "敲诈勒索": (
        "{date}，被告人{name}以公开{victim}的隐私照片相威胁，向其索要人民币{amount}元，{victim}被迫转账。",
        "被告人{name}得知{victim}有婚外情后，多次发短信威胁要告知其家人，勒索{victim}现金{amount}元。",
        "{date}，被告人{name}以举报{company}排污问题相要挟，向该公司负责人{victim}索取{amount}元。",
    ),
    "妨害公务": (
        "{date}{hour}，民警在{place}依法处置警情时，被告人{name}拒不配合，用拳头殴打民警，致一名民警轻微伤。",
        "被告人{name}在{place}因违章停车被交警{victim}查处，遂撕扯其警服并推搡，阻碍交警依法执行职务。",
        "{date}，城管执法人员在{place}依法拆除违章建筑时，被告人{name}持木棍阻拦并打伤执法人员。",
    ),
    "聚众斗殴": (
        "{date}{hour}，被告人{name}因生意纠纷纠集{count}余人，持砍刀、钢管与{name2}一方在{place}{venue}门口互相殴打。",
        "被告人{name}与{name2}因争抢工程结怨，双方各自纠集多人于{date}在{place}持械斗殴，致多人受伤。",
        "{date}，被告人{name}召集同伙{count}人，约定与{name2}等人在{place}空地“约架”，双方持棍棒互殴。",
    ),
    "抢夺": (
        "{date}{hour}，被告人{name}骑摩托车行至{place}{road}时，趁被害人{victim}不备，夺走其挎包，包内有现金{amount}元。",
        "被告人{name}于{date}在{place}一家{shop}以试戴为名拿起金项链一条，随即夺路逃跑，经鉴定价值{amount}元。",
        "{date}，被告人{name}在{place}公交站台一把夺过{victim}手中的手机后逃离，该手机价值{amount}元。",
    ),
    "非法拘禁": (
        "被告人{name}因{victim}欠其{amount}元未还，于{date}将{victim}强行带至{place}一宾馆内关押{count}天。",
        "{date}，被告人{name}伙同{name2}以索要赌债为由，将{victim}扣押在出租屋内，限制其人身自由二十余小时。",
    ),
}
"""Fact templates per charge; every slot is filled by `_slots`."""

ARTICLES: dict[str, int] = {
    "盗窃": 264,
    "故意伤害": 234,
    "诈骗": 266,
    "危险驾驶": 133,  # 第133条之一, which CAIL2018 numbers 133 (its article list has no 133之一)
    "交通肇事": 133,
    "抢劫": 263,
    "寻衅滋事": 293,
    "容留他人吸毒": 354,
    "走私、贩卖、运输、制造毒品": 347,
    "开设赌场": 303,
    "信用卡诈骗": 196,
    "掩饰、隐瞒犯罪所得、犯罪所得收益": 312,
    "故意毁坏财物": 275,
    "非法持有毒品": 348,
    "职务侵占": 271,
    "敲诈勒索": 274,
    "妨害公务": 277,
    "聚众斗殴": 292,
    "抢夺": 267,
    "非法拘禁": 238,
}
"""The Criminal Law article defining each charge, as CAIL2018's `relevant_articles` gives it."""

TERM_MONTHS: dict[str, tuple[int, int]] = {
    "盗窃": (1, 36),  # 数额较大: 三年以下有期徒刑、拘役或者管制
    "故意伤害": (6, 36),  # 轻伤: 三年以下; the facts' 重伤二级 would allow three to ten years
    "诈骗": (6, 36),  # 数额较大: 三年以下
    "危险驾驶": (1, 6),  # 拘役, one to six months
    "交通肇事": (6, 36),  # 三年以下
    "抢劫": (36, 120),  # 三年以上十年以下
    "寻衅滋事": (6, 60),  # 五年以下
    "容留他人吸毒": (6, 36),  # 三年以下
    "走私、贩卖、运输、制造毒品": (6, 84),  # 少量: 三年以下; 10 g of methamphetamine or more: 七年以上
    "开设赌场": (6, 60),  # 五年以下
    "信用卡诈骗": (6, 60),  # 数额较大: 五年以下
    "掩饰、隐瞒犯罪所得、犯罪所得收益": (6, 36),  # 三年以下
    "故意毁坏财物": (6, 36),  # 三年以下
    "非法持有毒品": (6, 84),  # 三年以下; 50 g of methamphetamine or more: 七年以上
    "职务侵占": (6, 36),  # 数额较大: 三年以下
    "敲诈勒索": (6, 36),  # 数额较大: 三年以下
    "妨害公务": (6, 36),  # 三年以下
    "聚众斗殴": (6, 36),  # 三年以下
    "抢夺": (6, 36),  # 数额较大: 三年以下
    "非法拘禁": (6, 36),  # 三年以下
}
"""(fewest, most) months of imprisonment per charge: its article's basic range, in which terms are drawn."""
TERM_SEED = "term"
"""Mixed into the seed of the terms' own random stream, which leaves the facts' stream as it always was."""

TWO_CHARGE_PAIRS: tuple[tuple[str, str], ...] = (
    ("盗窃", "诈骗"),
    ("故意伤害", "妨害公务"),
    ("容留他人吸毒", "非法持有毒品"),
    ("盗窃", "信用卡诈骗"),
    ("寻衅滋事", "故意毁坏财物"),
    ("抢劫", "盗窃"),
    ("危险驾驶", "妨害公务"),
    ("走私、贩卖、运输、制造毒品", "容留他人吸毒"),
    ("开设赌场", "非法拘禁"),
    ("抢夺", "盗窃"),
)
"""Offences that plausibly occur together in one judgment."""

_SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾田董潘袁蔡蒋余杜叶程魏苏吕丁沈姚卢"
_GIVEN = "明华强军伟芳丽平勇杰涛斌"
_CITIES = (
    "北京市朝阳区",
    "上海市浦东新区",
    "广州市天河区",
    "深圳市宝安区",
    "杭州市西湖区",
    "南京市江宁区",
    "武汉市洪山区",
    "成都市武侯区",
    "重庆市渝北区",
    "西安市雁塔区",
    "长沙市岳麓区",
    "郑州市金水区",
    "济南市历下区",
    "合肥市蜀山区",
    "昆明市官渡区",
    "南宁市青秀区",
    "福州市鼓楼区",
    "沈阳市和平区",
    "哈尔滨市南岗区",
    "石家庄市长安区",
)
_STREETS = ("人民路", "解放路", "建设大道", "中山路", "胜利街", "和平路", "新华路", "长江路")
_CHOICES: dict[str, tuple[str, ...]] = {
    "shop": ("超市", "手机店", "金店", "便利店", "服装店"),
    "venue": ("夜市", "KTV", "烧烤店", "公交车上", "网吧", "广场"),
    "hotel": ("宾馆", "酒店", "旅馆"),
    "item": ("手机一部", "电动车一辆", "笔记本电脑一台", "金项链一条", "香烟十条", "钱包一个"),
    "weapon": ("木棍", "水果刀", "铁棍", "啤酒瓶", "砖块"),
    "injury": ("轻伤一级", "轻伤二级", "重伤二级"),
    "role": ("银行客服", "公安民警", "网店客服", "领导", "快递员"),
    "pretext": ("账户涉嫌洗钱需转入安全账户", "刷单返利", "退还商品货款", "办理低息贷款"),
    "goods": ("二手手机", "演唱会门票", "名牌包", "口罩", "电脑配件"),
    "car": ("小型轿车", "二轮摩托车", "重型货车", "小型普通客车"),
    "company": ("某商贸有限公司", "某物流公司", "某超市", "某建材公司"),
}


def generate(n: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Generate `n` distinct synthetic CAIL-format records, the same ones for the same seed.

    Args:
        n: Number of records.
        seed: Seed of the random generator; the output depends on nothing else.

    Returns:
        Records with `fact`, `meta.accusation` (sorted charge names), `meta.relevant_articles` (sorted article
        numbers), `meta.term_of_imprisonment` (CAIL2018's layout) and `"synthetic": true`.
    """
    rng = random.Random(seed)
    term_rng = random.Random(f"{TERM_SEED}:{seed}")
    charges = sorted(TEMPLATES)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(records) < n:
        pair: tuple[str, ...] = (
            rng.choice(TWO_CHARGE_PAIRS) if rng.random() < TWO_CHARGE_SHARE else (rng.choice(charges),)
        )
        slots = _slots(rng)
        parts = [rng.choice(TEMPLATES[charge]).format(**slots) for charge in pair]
        fact = "另查明，".join(parts)
        if fact in seen:
            continue
        seen.add(fact)
        meta = {
            "accusation": sorted(pair),
            "relevant_articles": sorted({ARTICLES[charge] for charge in pair}),
            "term_of_imprisonment": {
                "death_penalty": False,
                "imprisonment": _term(term_rng, pair),
                "life_imprisonment": False,
            },
        }
        records.append({"fact": fact, "meta": meta, "synthetic": True})
    return records


def _term(rng: random.Random, charges: tuple[str, ...]) -> int:
    """Months for `charges`: one draw per charge in its range; for two, a combined term between the longer
    one and their sum (数罪并罚, Criminal Law article 69)."""
    terms = [rng.randint(*TERM_MONTHS[charge]) for charge in charges]
    return rng.randint(max(terms), sum(terms)) if len(terms) > 1 else terms[0]


def to_jsonl(records: list[dict[str, Any]]) -> str:
    """Serialise records as UTF-8 JSON lines, exactly as the shipped sample file is written."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _slots(rng: random.Random) -> dict[str, str]:
    """Draw one value for every template slot; names of one record are distinct."""
    names = rng.sample([s + tail for s in _SURNAMES for tail in ("某", "某某", *(f"某{g}" for g in _GIVEN))], 4)
    city, city2 = rng.sample(_CITIES, 2)
    year = rng.randint(2013, 2018)
    month = rng.randint(1, 11)
    slots = {key: rng.choice(options) for key, options in _CHOICES.items()}
    slots.update(
        name=names[0],
        name2=names[1],
        name3=names[2],
        victim=names[3],
        city=city[: city.index("市") + 1],
        city2=city2[: city2.index("市") + 1],
        place=city,
        road=rng.choice(_STREETS),
        date=f"{year}年{month}月{rng.randint(1, 28)}日",
        date2=f"{year}年{month + 1}月{rng.randint(1, 28)}日",
        hour=f"{rng.choice((1, 2, 10, 14, 19, 21, 22, 23))}时许",
        amount=str(rng.choice((rng.randint(3, 99) * 100, rng.randint(1, 30) * 1000, rng.randint(1000, 9999)))),
        price=str(rng.randint(2, 30) * 50),
        count=str(rng.randint(2, 9)),
        gram=f"{rng.randint(5, 300) / 10:g}",
        held=str(rng.randint(10, 300)),
        bac=str(rng.randint(81, 260)),
    )
    return slots


def main(argv: list[str] | None = None) -> None:
    """Write synthetic records as JSONL to stdout or to --output."""
    parser = argparse.ArgumentParser(prog="python -m pixiu_law.synthetic", description=__doc__.splitlines()[0])
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
