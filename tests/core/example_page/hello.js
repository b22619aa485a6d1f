// Asks the example page's own endpoint, and shows its answer.
const response = await fetch("api/hello");
document.getElementById("greeting").textContent = (await response.json()).greeting;
