// MathJax for pymdownx.arithmatex (generic mode), as mkdocs-material documents it; re-typesets on instant navigation.
window.MathJax = {
  tex: { inline: [["\\(", "\\)"]], display: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};
if (typeof document$ !== "undefined") {
  document$.subscribe(() => { if (window.MathJax.typesetPromise) { MathJax.typesetPromise(); } });
}
