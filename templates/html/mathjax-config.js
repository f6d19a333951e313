// MathJax reads this before it starts.  Everything it needs is in the inlined build, so
// nothing may be loaded: no menu (it would fetch its speech and a11y parts on demand).
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: false },
  svg: { fontCache: "global" },
  options: { enableMenu: false, menuOptions: { settings: { assistiveMml: false } } },
  startup: { typeset: true }
};
