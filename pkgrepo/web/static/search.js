// Search as you type: hide the list items whose name and description do not contain the query.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("q");
  const count = document.getElementById("count");
  const items = Array.from(document.querySelectorAll("#list > li"));
  const texts = items.map((li) => li.textContent.toLowerCase());
  box.closest("p").hidden = false;
  const update = () => {
    const q = box.value.trim().toLowerCase();
    let shown = 0;
    items.forEach((li, i) => {
      li.hidden = !texts[i].includes(q);
      if (!li.hidden) shown += 1;
    });
    count.textContent = q ? `${shown} of ${items.length}` : "";
  };
  box.addEventListener("input", update);
  update();
});
