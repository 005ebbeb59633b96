// The catalog's search box: a client-side filter over window.ASTRA_SEARCH (search-index.js),
// loaded as a classic script so the site works from file:// with no server.
// Results are built with DOM calls and textContent only: index text is never parsed as HTML.
(function () {
  "use strict";
  var input = document.getElementById("search");
  var list = document.getElementById("results");
  var root = document.body.getAttribute("data-root") || "";
  var index = window.ASTRA_SEARCH || [];
  var LIMIT = 25;

  function fields(item) {
    return {
      name: item.name.toLowerCase(),
      rest: [item.description, item.owner, item.tags.join(" "), item.kind, item.extra].join(" ").toLowerCase()
    };
  }
  var prepared = index.map(function (item) { return { item: item, f: fields(item) }; });

  // Every word of the query must occur somewhere; names that match rank first.
  function score(entry, words) {
    var total = 0;
    for (var i = 0; i < words.length; i++) {
      var w = words[i], n = entry.f.name, at = n.indexOf(w);
      if (at === 0 || n.indexOf("." + w) >= 0 || n.indexOf("@" + w) >= 0) total += 8;
      else if (at > 0) total += 5;
      else if (entry.f.rest.indexOf(w) >= 0) total += 1;
      else return 0;
    }
    return total;
  }

  function search(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    return prepared
      .map(function (e) { return { e: e, s: score(e, words) }; })
      .filter(function (r) { return r.s > 0; })
      .sort(function (a, b) { return b.s - a.s || a.e.item.name.length - b.e.item.name.length || (a.e.item.name < b.e.item.name ? -1 : 1); })
      .slice(0, LIMIT)
      .map(function (r) { return r.e.item; });
  }

  function show(items, query) {
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!query.trim()) { list.hidden = true; return; }
    if (!items.length) {
      var none = document.createElement("li");
      none.className = "empty";
      none.textContent = "Nothing matches \u201c" + query + "\u201d";
      list.appendChild(none);
    }
    items.forEach(function (item) {
      var li = document.createElement("li");
      var kind = document.createElement("span");
      kind.className = "k";
      kind.textContent = item.kind;
      var a = document.createElement("a");
      a.href = root + item.url;
      a.textContent = item.name;
      li.appendChild(kind);
      li.appendChild(a);
      var about = [item.description, item.owner, item.tags.join(", ")].filter(Boolean).join(" \u00b7 ");
      if (about) {
        var d = document.createElement("span");
        d.className = "d";
        d.textContent = about;
        li.appendChild(d);
      }
      list.appendChild(li);
    });
    list.hidden = false;
  }

  if (!input || !list) return;
  input.addEventListener("input", function () { show(search(input.value), input.value); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      var first = list.querySelector("a");
      if (first) window.location.href = first.href;
    } else if (ev.key === "Escape") {
      input.value = "";
      show([], "");
    } else if (ev.key === "ArrowDown") {
      move(0);
      ev.preventDefault();
    }
  });
  // Arrow keys walk the results; Escape goes back to the box.
  function move(to) {
    var links = list.querySelectorAll("a");
    if (!links.length) return;
    if (to < 0) { input.focus(); return; }
    links[Math.min(to, links.length - 1)].focus();
  }
  list.addEventListener("keydown", function (ev) {
    var links = Array.prototype.slice.call(list.querySelectorAll("a"));
    var at = links.indexOf(document.activeElement);
    if (ev.key === "ArrowDown") { move(at + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowUp") { move(at - 1); ev.preventDefault(); }
    else if (ev.key === "Escape") { input.focus(); }
  });
  document.addEventListener("click", function (ev) {
    if (!list.contains(ev.target) && ev.target !== input) list.hidden = true;
  });
})();
