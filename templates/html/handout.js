// The handout's behaviour, and nothing it shows: every path, role, formula and number
// was computed by derive (html.py) and sits in #derive-data; this only moves the class
// `on-path` (with data-role) onto the listed edges and inserts the prepared LaTeX.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("derive-data").textContent);
  var params = data.params;
  var svg = document.querySelector("#diagram svg");
  var panel = document.getElementById("chain");
  var pinned = null, shown = null;

  function clear() {
    document.querySelectorAll(".on-path").forEach(function (el) {
      el.classList.remove("on-path");
      el.removeAttribute("data-role");
    });
    document.querySelectorAll('button[aria-pressed="true"]').forEach(function (b) {
      b.setAttribute("aria-pressed", "false");
    });
  }

  function mark(selector, role) {
    var el = svg.querySelector(selector);
    if (!el) return null;  // an elided neuron: the diagram leaves it out
    el.classList.add("on-path");
    el.setAttribute("data-role", role);
    return el;
  }

  function element(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function math(tex) {
    return element("span", "math", "\\(" + tex + "\\)");
  }

  function formula(tex) {  // a line of its own that scrolls sideways when too wide
    var box = element("span", "formula");
    box.appendChild(math(tex));
    return box;
  }

  function explain(p) {
    panel.replaceChildren();
    var head = element("h2", "", "The chain rule for " + p.name + " ");
    head.appendChild(math(p.lhs));
    panel.appendChild(head);
    panel.appendChild(element("p", "", p.paths.length === 1 ? "One path from the parameter to the loss:"
      : p.paths.length + " paths from the parameter to the loss, added up:"));
    var list = element("ol", "paths");
    p.paths.forEach(function (q) {
      var item = element("li");
      item.appendChild(element("span", "route", q.route));
      item.appendChild(element("span", "roles", q.roles));
      item.appendChild(formula(q.latex));
      if (q.value !== null) item.appendChild(formula("= " + q.value));
      list.appendChild(item);
    });
    panel.appendChild(list);
    var total = element("p", "total");
    total.appendChild(formula(p.lhs + " = " + p.result));
    panel.appendChild(total);
    if (p.value !== null) {
      var number = element("p", "value");
      number.setAttribute("data-value", p.value);
      if (p.sum !== null) number.appendChild(formula(p.lhs + " = " + p.sum));
      number.appendChild(formula((p.sum === null ? p.lhs + " = " : "= ") + p.value));
      panel.appendChild(number);
    }
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.typesetPromise([panel]).catch(function (err) { console.error(err); });
    }
  }

  function show(name) {
    var p = params[name];
    if (!p || name === shown) return;
    clear();
    shown = name;
    var firstDisc = svg.querySelector("circle");
    p.edges.forEach(function (e) {
      var el = mark('line[data-from="' + e[0] + '"][data-to="' + e[1] + '"]', e[2]);
      if (el && firstDisc) svg.insertBefore(el, firstDisc);  // drawn over the grey edges
    });
    p.nodes.forEach(function (n) { mark('circle[data-node="' + n[0] + '"]', n[1]); });
    document.querySelectorAll('button[data-param="' + name + '"]').forEach(function (b) {
      b.setAttribute("aria-pressed", "true");
    });
    explain(p);
  }

  function choose(name) { pinned = name; shown = null; show(name); }

  document.querySelectorAll("[data-param]").forEach(function (el) {
    var name = el.getAttribute("data-param");
    el.addEventListener("click", function () { choose(name); });
    el.addEventListener("mouseenter", function () { show(name); });
    el.addEventListener("mouseleave", function () {
      if (pinned !== name) {
        if (pinned) { shown = null; show(pinned); } else { clear(); shown = null; panel.replaceChildren(element("p", "empty", "No parameter chosen yet.")); }
      }
    });
  });
  svg.addEventListener("keydown", function (ev) {
    var name = ev.target.getAttribute && ev.target.getAttribute("data-param");
    if (name && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); choose(name); }
  });
  if (data.selected) choose(data.selected);
  window.deriveHandout = { choose: choose, selected: function () { return pinned; } };
})();
