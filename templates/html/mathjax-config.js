// MathJax reads this before it starts.  Everything it needs is in the inlined build, so
// nothing may be loaded: no menu (it would fetch its speech parts on demand); the
// assistive MathML inside the build stays on, for screen readers.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: false },
  svg: { fontCache: "global" },
  options: { enableMenu: false },
  startup: { typeset: true }
};
