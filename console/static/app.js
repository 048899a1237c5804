// Progressive enhancement only: every page works without it.
// Ctrl+Enter (or Cmd+Enter) sends the compose box.
document.addEventListener("keydown", function (e) {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.form && e.target.tagName === "TEXTAREA") {
    e.preventDefault();
    e.target.form.requestSubmit();
  }
});
// Keep the newest message in view.
document.addEventListener("DOMContentLoaded", function () {
  var t = document.getElementById("thread");
  if (t && t.lastElementChild) { t.lastElementChild.scrollIntoView({block: "end"}); }
});
