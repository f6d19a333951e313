#!/usr/bin/env bash
# One entry point for developers and CI.
#
#   ./dev.sh              install what is missing, then run `derive` (default example -> output/)
#   ./dev.sh run ARGS     the same, passing ARGS to `derive`
#   ./dev.sh test ARGS    install what is missing, then run pytest with ARGS
#   ./dev.sh setup        install only
#   ./dev.sh bench ARGS   install, then run benchmarks/run_all.py if there is one
#
# Each install step is skipped when a stamp says it is done, so a warm run takes well under
# a second. Stamps: .venv/.stamp (pyproject.toml's hash), .venv/.tex-stamp (the TeX
# check passed), .venv/.browser-stamp (chromium and its driver run),
# node_modules/.derive-stamp (package*.json's hash). Delete one to redo.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

TEX_TOOLS=(pdflatex latexmk pdftotext pdftoppm)
# texlive-latex-extra holds exam.cls: tests/test_snippets.py compiles snippets in exam questions
TEX_PACKAGES=(texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-pictures lmodern latexmk poppler-utils)
# Classes a teacher \inputs snippets into (beamer: -recommended; exam: -extra)
TEX_CLASSES=(beamer.cls exam.cls)
BROWSER_PACKAGES=(chromium chromium-driver)  # headless chromium for tests/test_html.py (selenium)
TORCH_REQUIREMENT="torch==2.13.0"   # the CPU wheel on this kind of machine; plain `torch` is a CUDA build
PYTHON=${PYTHON:-python3}

# The preamble derive's documents need; the check compiles it so a missing .sty shows up here.
TEX_PROBE='\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{tikz,xcolor,amsmath,amssymb,lmodern}
\begin{document}
$\sigma(z) = \frac{1}{1 + e^{-z}}$ \tikz\draw[red] (0,0) -- (1,1);
\end{document}'

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install these yourself: $*"
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-unsafe-io -o DPkg::Lock::Timeout=300 "$@"
}

missing_tex_tools() {
    local tool
    for tool in "${TEX_TOOLS[@]}"; do
        command -v "$tool" >/dev/null || printf '%s ' "$tool"
    done
}

tex_tools_present() { [[ -z $(missing_tex_tools) ]]; }

tex_classes_present() {
    local cls
    for cls in "${TEX_CLASSES[@]}"; do
        [[ -n $(kpsewhich "$cls" 2>/dev/null) ]] || return 1
    done
}

tex_compiles() {
    local dir ok=0
    dir=$(mktemp -d)
    printf '%s\n' "$TEX_PROBE" >"$dir/probe.tex"
    (cd "$dir" && pdflatex -interaction=nonstopmode -halt-on-error probe.tex >/dev/null 2>&1) || ok=1
    if [[ $ok != 0 ]]; then
        grep -A3 '^!' "$dir/probe.log" >&2 || true
    fi
    rm -rf "$dir"
    return $ok
}

setup_tex() {
    local stamp=.venv/.tex-stamp want
    want=$(printf '%s\n' "$TEX_PROBE" "${TEX_PACKAGES[@]}" "${TEX_CLASSES[@]}" | sha256sum | cut -d' ' -f1)
    if tex_tools_present && tex_classes_present && [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        return
    fi
    if ! tex_tools_present || ! tex_classes_present || ! tex_compiles; then
        apt_install "${TEX_PACKAGES[@]}"
        tex_tools_present || die "still missing after the install: $(missing_tex_tools)"
        tex_classes_present || die "still missing after the install: one of ${TEX_CLASSES[*]}"
        tex_compiles || die "pdflatex cannot compile the probe document (see the errors above)"
    fi
    mkdir -p .venv
    echo "$want" >"$stamp"
    say "TeX ok"
}

browser_runs() {
    command -v chromium >/dev/null && command -v chromedriver >/dev/null \
        && chromium --headless --no-sandbox --version >/dev/null 2>&1 \
        && chromedriver --version >/dev/null 2>&1
}

# Debian's chromium with its driver: selenium opens the HTML handouts in a real browser.
setup_browser() {
    local stamp=.venv/.browser-stamp want
    want=$(printf '%s\n' "${BROWSER_PACKAGES[@]}" | sha256sum | cut -d' ' -f1)
    if [[ -f $stamp && $(<"$stamp") == "$want" ]] && command -v chromedriver >/dev/null; then
        return
    fi
    if ! browser_runs; then
        apt_install "${BROWSER_PACKAGES[@]}"
        browser_runs || die "chromium or chromedriver does not run after the install"
    fi
    mkdir -p .venv
    echo "$want" >"$stamp"
    say "chromium ok ($(chromedriver --version | cut -d' ' -f1-2))"
}

setup_python() {
    local stamp=.venv/.stamp want
    if ! .venv/bin/python -c '' 2>/dev/null; then
        say "creating .venv with $PYTHON"
        "$PYTHON" -m venv .venv
        rm -f "$stamp"
    fi
    want="$(hash_of pyproject.toml) $TORCH_REQUIREMENT"
    if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        return
    fi
    say "pip install -e '.[test]' $TORCH_REQUIREMENT"
    # This machine's pip.conf names local indexes that hold only some packages; pip warns
    # once for every other package. Drop those lines; pipefail keeps pip's exit code.
    .venv/bin/python -m pip install -q -e '.[test]' "$TORCH_REQUIREMENT" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    echo "$want" >"$stamp"
}

setup_node() {
    local stamp=node_modules/.derive-stamp want
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        apt_install nodejs npm
    fi
    want=$(hash_of package.json package-lock.json 2>/dev/null || hash_of package.json)
    if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        return
    fi
    if [[ -f package-lock.json ]]; then
        say "npm ci"
        npm ci --no-audit --no-fund --loglevel=error
    else
        say "npm install (no package-lock.json yet)"
        npm install --no-audit --no-fund --loglevel=error
        want=$(hash_of package.json package-lock.json)
    fi
    echo "$want" >"$stamp"
}

setup() {
    setup_python
    setup_tex
    setup_browser
    setup_node
}

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

mode=${1:-run}
if [[ $# -gt 0 ]]; then shift; fi

case $mode in
    run)
        setup
        exec .venv/bin/derive "$@"
        ;;
    test)
        setup
        exec .venv/bin/python -m pytest "$@"
        ;;
    setup)
        setup
        say "setup done"
        ;;
    bench)
        setup
        if [[ -f benchmarks/run_all.py ]]; then
            exec .venv/bin/python benchmarks/run_all.py "$@"
        fi
        echo "no benchmarks yet (benchmarks/run_all.py does not exist)"
        ;;
    -h|--help|help)
        usage
        ;;
    *)
        printf 'dev.sh: unknown mode %q\n' "$mode" >&2
        usage
        ;;
esac
