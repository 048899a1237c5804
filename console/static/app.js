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
// Live updates: the server says only "changed"; the page fetches itself
// again (as its session may see it) and swaps in its live parts, leaving
// what is being typed alone.
(function () {
  if (!window.EventSource || !window.fetch) { return; }
  var live = ["thread", "conversations", "recipients", "ops", "suppressions"];
  var pending = false;
  function refresh() {
    pending = false;
    fetch(location.href, {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) { return; }
      var doc = new DOMParser().parseFromString(html, "text/html");
      live.forEach(function (id) {
        var now = document.getElementById(id), next = doc.getElementById(id);
        if (now && next && now.innerHTML !== next.innerHTML) {
          now.innerHTML = next.innerHTML;
          if (id === "thread" && now.lastElementChild) { now.lastElementChild.scrollIntoView({block: "end"}); }
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!live.some(function (id) { return document.getElementById(id); })) { return; }
    var es = new EventSource("/ui/events");
    function soon() {
      if (!pending) { pending = true; setTimeout(refresh, 150); }
    }
    es.addEventListener("changed", soon);
    // What changed between the page being rendered and the stream being
    // open (or while it was reconnecting) sent no event to this page.
    es.addEventListener("open", soon);
  });
})();
