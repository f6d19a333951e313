"""`derive exercises`: every answer against an independent computation, every format read back.

The reference is written here from the textbook: an mpmath forward pass
(tests/textbook.py's activations, the losses below) at 50 digits, and
central differences of it (h = 1e-20) for every gradient, so nothing of
derive's derivation is trusted.  Formula options are parsed by SymPy's own
parser in this test (our generated text, never user text) and evaluated at
random points against the same central differences.  The Moodle XML is read
with lxml and held to the structure Moodle's importer expects; the QTI zip is
unpacked and parsed.
"""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import mpmath
import pytest
import sympy
from lxml import etree

import derive
from derive.errors import SpecError
from derive.qa.quiz import build
from textbook import ACTIVATIONS

DIGITS, STEP = 50, mpmath.mpf("1e-20")
#: Engine answers are float64; the reference has 50 digits.
RTOL, ATOL = 1e-9, 1e-12
NETWORKS = [
    ("sigmoid-half_sse", dict(layers=[2, 3, 1], activation="sigmoid", loss="half_sse")),
    ("tanh-softmax-ce", dict(layers=[2, 2, 3], activation=["tanh", "softmax"], loss="cross_entropy")),
    ("relu-sigmoid-bce", dict(layers=[3, 2, 1], activation=["relu", "sigmoid"], loss="bce")),
]
KINDS = "forward,loss,delta,gradient,update,factors,formula"


def _loss(name: str, a: list, y: list):
    n = len(a)
    terms = {"half_sse": lambda ai, yi: (ai - yi) ** 2 / 2, "sse": lambda ai, yi: (ai - yi) ** 2,
             "mse": lambda ai, yi: (ai - yi) ** 2 / n,
             "bce": lambda ai, yi: -(yi * mpmath.log(ai) + (1 - yi) * mpmath.log(1 - ai)),
             "cross_entropy": lambda ai, yi: -yi * mpmath.log(ai)}[name]
    return mpmath.fsum(terms(ai, yi) for ai, yi in zip(a, y))


def forward(cfg: dict, values: dict):
    """z, a per layer (1-based lists) and the loss, from the textbook, at 50 digits."""
    acts = cfg["activation"] if isinstance(cfg["activation"], list) else [cfg["activation"]] * (len(cfg["layers"]) - 1)
    prev = [mpmath.mpf(v) for v in values["x"]]
    zs, as_ = {}, {0: prev}
    for l, act in enumerate(acts, 1):
        W, b = values[f"W{l}"], values.get(f"b{l}", [0] * len(values[f"W{l}"]))
        z = [mpmath.fsum(mpmath.mpf(w) * p for w, p in zip(row, prev)) + mpmath.mpf(bj)
             for row, bj in zip(W, b)]
        if act == "softmax":
            e = [mpmath.exp(v) for v in z]
            prev = [v / mpmath.fsum(e) for v in e]
        else:
            prev = [ACTIVATIONS[act](v) for v in z]
        zs[l], as_[l] = z, prev
    return zs, as_, _loss(cfg["loss"], prev, [mpmath.mpf(v) for v in values["y"]])


def _perturbed(values: dict, name: str, h) -> dict:
    head, idx = name.rstrip("]").split("[")
    idx = [int(i) - 1 for i in idx.split(",")]
    out = json.loads(json.dumps(values))
    row = out[head]
    if len(idx) == 2:
        row[idx[0]][idx[1]] = mpmath.mpf(row[idx[0]][idx[1]]) + h
    else:
        row[idx[0]] = mpmath.mpf(row[idx[0]]) + h
    return out


def gradient(cfg: dict, values: dict, name: str):
    """Central difference of the textbook loss in parameter `name`."""
    up = forward(cfg, _perturbed(values, name, STEP))[2]
    down = forward(cfg, _perturbed(values, name, -STEP))[2]
    return (up - down) / (2 * STEP)


def delta(cfg: dict, values: dict, l: int, j: int):
    """dL/dz(l)_j = dL/db(l)_j, also for a network without biases (a shifted z)."""
    return gradient(cfg, values, f"b{l}[{j}]")


def reference(cfg: dict, values: dict, q: dict):
    zs, as_, loss = forward(cfg, values)
    kind, target = q["kind"], q["target"]
    if kind == "loss":
        return loss
    if kind in ("gradient", "update"):
        g = gradient(cfg, values, target)
        if kind == "gradient":
            return g
        head, idx = target.rstrip("]").split("[")
        idx = [int(i) - 1 for i in idx.split(",")]
        w = values[head][idx[0]][idx[1]] if len(idx) == 2 else values[head][idx[0]]
        return mpmath.mpf(w) - mpmath.mpf(values["learning_rate"]) * g
    m = re.fullmatch(r"(z|a|delta)(\d+)\[(\d+)\]", target)
    letter, l, j = m.group(1), int(m.group(2)), int(m.group(3))
    if letter == "delta":
        return delta(cfg, values, l, j)
    return (zs if letter == "z" else as_)[l][j - 1]


def questions(doc: dict, kind: str | None = None) -> list[dict]:
    """Every question of the JSON document, in order, or those of one kind."""
    return [q for v in doc["variants"] for q in v["questions"] if kind in (None, q["kind"])]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = {}
    with mpmath.workdps(DIGITS):
        for name, cfg in NETWORKS:
            net = derive.Network(**cfg)
            folder = tmp_path_factory.mktemp(name)
            build(net, folder, count=5, seed=11, kinds=KINDS, formats="json,md,tex,moodle,qti")
            out[name] = (cfg, net, folder, json.loads((folder / "exercises.json").read_text()))
    return out


@pytest.mark.parametrize("name", [n for n, _ in NETWORKS])
def test_exercises_numeric_answers_match_an_independent_reference(generated, name):
    cfg, _, _, doc = generated[name]
    assert len(doc["variants"]) == 5
    checked = 0
    with mpmath.workdps(DIGITS):
        for v in doc["variants"]:
            for q in v["questions"]:
                if "answer" not in q:
                    continue
                ref = reference(cfg, v["values"], q)
                assert abs(q["answer"] - ref) <= ATOL + RTOL * abs(ref), (v["seed"], q, ref)
                assert q["tolerance"] > 0
                checked += 1
    assert checked == 5 * 5


def _sympy_of(text: str) -> tuple[sympy.Expr, dict]:
    """Our claim-syntax text as SymPy, names like a1[2] turned into symbols (test-side parser)."""
    names = {}

    def name(m):
        key = f"{m.group(1)}{m.group(2)}_{m.group(3).replace(',', '_')}"
        names[key] = (m.group(1), m.group(2), m.group(3))
        return key

    source = re.sub(r"\b(x|y|W|b|z|a)(\d*)\[([\d,]+)\]", name, text)
    return sympy.sympify(source, locals={k: sympy.Symbol(k) for k in names}), names


def _option_value(cfg, values, text):
    expr, names = _sympy_of(text)
    zs, as_, _ = forward(cfg, values)
    subs = {}
    for key, (kind, layer, idx) in names.items():
        i = [int(v) - 1 for v in idx.split(",")]
        if kind in "xy":
            subs[sympy.Symbol(key)] = values[kind][i[0]]
        elif kind in "Wb":
            row = values[f"{kind}{layer}"]
            subs[sympy.Symbol(key)] = row[i[0]][i[1]] if kind == "W" else row[i[0]]
        else:
            arr = (zs if kind == "z" else as_)[int(layer)]
            subs[sympy.Symbol(key)] = arr[i[0]]
    return mpmath.mpf(sympy.N(expr.xreplace({k: sympy.Float(str(v), 60) for k, v in subs.items()}), 40))


def _random_values(cfg, rng: random.Random) -> dict:
    n = cfg["layers"]
    vals = {"x": [rng.uniform(-1, 1) for _ in range(n[0])], "learning_rate": 0.5}
    if cfg["loss"] == "cross_entropy":
        raw = [rng.uniform(0.1, 1) for _ in range(n[-1])]
        vals["y"] = [v / sum(raw) for v in raw]
    else:
        vals["y"] = [rng.uniform(0.1, 0.9) for _ in range(n[-1])]
    for l in range(1, len(n)):
        vals[f"W{l}"] = [[rng.uniform(-1.5, 1.5) for _ in range(n[l - 1])] for _ in range(n[l])]
        vals[f"b{l}"] = [rng.uniform(-1, 1) for _ in range(n[l])]
    return vals


@pytest.mark.parametrize("name", [n for n, _ in NETWORKS])
def test_exercises_formula_key_is_right_and_distractors_wrong(generated, name):
    cfg, _, _, doc = generated[name]
    rng = random.Random(5)
    points = [_random_values(cfg, rng) for _ in range(6)]
    formulas = questions(doc, "formula")
    assert formulas
    with mpmath.workdps(DIGITS):
        for q in formulas:
            assert len(q["options"]) >= 3 and len(q["feedback"]) == len(q["options"])
            truths = [gradient(cfg, p, q["target"]) for p in points]
            for i, text in enumerate(q["options"]):
                claimed = [_option_value(cfg, p, text) for p in points]
                agree = all(abs(c - t) <= 1e-15 * max(1, abs(t)) for c, t in zip(claimed, truths))
                assert agree == (i == q["correct"]), (q["target"], text, q["feedback"][i])


def test_exercises_factor_questions_key_the_roles_on_the_paths(generated):
    _, net, _, doc = generated["sigmoid-half_sse"]
    for q in questions(doc, "factors"):
        key = q["options"][q["correct"]]
        # a first-layer weight needs every role; an output weight has no later weights
        assert ("weight (dz/da)" in key) == q["target"].startswith("W1")
        assert "loss L itself" not in key


def test_exercises_same_seed_same_bytes_other_seed_other_values(tmp_path):
    net = derive.load(Path(__file__).parent.parent / "examples" / "tiny.toml")
    runs = []
    for folder, seed in ((tmp_path / "a", 7), (tmp_path / "b", 7), (tmp_path / "c", 8)):
        build(net, folder, count=3, seed=seed, formats="pdf,tex,md,moodle,qti,json")
        runs.append({p.name: p.read_bytes() for p in sorted(folder.iterdir())})
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"exercises.pdf", "exercises-key.pdf", "exercises.tex", "exercises-key.tex",
                            "exercises.md", "exercises-key.md", "exercises-moodle.xml",
                            "exercises-qti.zip", "exercises.json"}
    values = lambda run: [v["values"] for v in json.loads(run["exercises.json"])["variants"]]  # noqa: E731
    assert values(runs[0]) != values(runs[2])


def test_exercises_key_shows_the_chain_rule_with_the_variants_numbers(generated):
    _, net, folder, doc = generated["sigmoid-half_sse"]
    key = (folder / "exercises-key.tex").read_text()
    sheet = (folder / "exercises.tex").read_text()
    assert r"\documentclass[11pt,a4paper,answers]{exam}" in key
    assert "answers]" not in sheet and r"\begin{solution}" in key
    first = doc["variants"][0]
    grad = next(q for q in first["questions"] if q["kind"] == "gradient")
    # the painted chain rule, then its numbers, then the answer
    assert r"\textcolor{deriveLoss}" in key and r"\textcolor{deriveActivation}" in key
    assert f"{grad['answer']:.4g}" in key
    w = first["values"]["W1"][0][0]
    assert f"{w:.4g}" in key


def test_exercises_pdf_sheet_and_key_compile(tmp_path):
    net = derive.Network(layers=[2, 2, 1], activation="sigmoid", loss="bce")
    paths = build(net, tmp_path, count=2, seed=3, formats="pdf")
    assert sorted(p.name for p in paths) == ["exercises-key.pdf", "exercises.pdf"]
    text = subprocess.run(["pdftotext", str(tmp_path / "exercises-key.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Variant 1" in text and "Solution" in text and "Answer key" in text
    sheet = subprocess.run(["pdftotext", str(tmp_path / "exercises.pdf"), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert "Solution" not in sheet and "Name:" in sheet


def test_exercises_moodle_xml_has_the_structure_moodle_imports(generated):
    _, _, folder, doc = generated["tanh-softmax-ce"]
    root = etree.parse(str(folder / "exercises-moodle.xml")).getroot()
    assert root.tag == "quiz"
    entries = root.findall("question")
    assert entries[0].get("type") == "category"
    assert entries[0].findtext("category/text").startswith("$course$/top/")
    by_type = {}
    for q in entries[1:]:
        by_type.setdefault(q.get("type"), []).append(q)
        assert q.findtext("name/text") and q.findtext("questiontext/text")
    numeric = [q for q in questions(doc) if "answer" in q]
    choice = [q for q in questions(doc) if "options" in q]
    assert len(by_type["numerical"]) == len(numeric)
    assert len(by_type["multichoice"]) == len(choice)
    assert len(by_type["cloze"]) == len(doc["variants"])
    for q, want in zip(by_type["numerical"], numeric):
        answer = q.find("answer")
        assert answer.get("fraction") == "100"
        assert float(answer.findtext("text")) == want["answer"]
        assert float(answer.findtext("tolerance")) == want["tolerance"]
    for q, want in zip(by_type["multichoice"], choice):
        fractions = [a.get("fraction") for a in q.findall("answer")]
        assert fractions.count("100") == 1 and fractions.count("0") == len(fractions) - 1
        assert fractions.index("100") == want["correct"]
        assert q.findtext("single") == "true"
        assert all(a.findtext("feedback/text") for a in q.findall("answer"))
    cloze = by_type["cloze"][0].findtext("questiontext/text")
    assert cloze.count("{1:NUMERICAL:=") == 5


def test_exercises_qti_package_unpacks_to_one_item_per_question(generated):
    _, _, folder, doc = generated["relu-sigmoid-bce"]
    with zipfile.ZipFile(io.BytesIO((folder / "exercises-qti.zip").read_bytes())) as z:
        assert sorted(z.namelist()) == ["assessment.xml", "imsmanifest.xml"]
        manifest = etree.fromstring(z.read("imsmanifest.xml"))
        assessment = etree.fromstring(z.read("assessment.xml"))
    ns = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
    href = manifest.find(".//{*}resource").get("href")
    assert href == "assessment.xml"
    items = assessment.findall(".//q:item", ns)
    assert len(items) == len(questions(doc))
    for item, q in zip(items, questions(doc)):
        assert item.find(".//q:respcondition/q:setvar", ns).text == "100"
        fields = {f.findtext("q:fieldlabel", namespaces=ns): f.findtext("q:fieldentry", namespaces=ns)
                  for f in item.findall(".//q:qtimetadatafield", ns)}
        if "options" in q:
            assert fields["question_type"] == "multiple_choice_question"
            labels = [l.get("ident") for l in item.findall(".//q:response_label", ns)]
            right = item.findtext(".//q:conditionvar/q:varequal", namespaces=ns)
            assert labels.index(right) == q["correct"] and len(labels) == len(q["options"])
        else:
            assert fields["question_type"] == "numerical_question"
            low = float(item.findtext(".//q:vargte", namespaces=ns))
            high = float(item.findtext(".//q:varlte", namespaces=ns))
            assert low < q["answer"] < high and high - low == pytest.approx(2 * q["tolerance"])


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "derive: --count must be a whole number from 1 to 200, got 0"),
    (["--count", "100000"], "derive: --count must be a whole number from 1 to 200, got 100000"),
    (["--questions", "forward,guess"], "derive: --questions: unknown question kind 'guess'; expected "
     "one of forward, loss, delta, gradient, update, factors, formula"),
    (["--format", "pdf,docx"], "derive: --format: unknown format 'docx'; expected some of pdf, tex, "
     "md, moodle, qti, json"),
])
def test_exercises_bad_input_is_one_line(tmp_path, capsys, argv, message):
    from derive.cli import main

    code = main(["exercises", "--layers", "2,2,1", "-o", str(tmp_path / "out"), *argv])
    out, err = capsys.readouterr()
    assert (code, err, out) == (2, message + "\n", "")
    assert not (tmp_path / "out").exists()


def test_exercises_refuse_a_network_too_big_for_hand_computation():
    with pytest.raises(SpecError, match="exercises are for hand computation and take at most 60"):
        derive.Network(layers=[784, 30, 10]).exercises(1)


def test_exercises_cli_writes_the_listed_files(tmp_path):
    run = subprocess.run([sys.executable, "-m", "derive", "exercises", "--layers", "2,2,1",
                          "--activation", "sigmoid", "--loss", "bce", "--count", "2", "--seed", "4",
                          "--format", "json,moodle", "-o", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(tmp_path / "exercises.json"), str(tmp_path / "exercises-moodle.xml")]


@pytest.mark.parametrize("name", [n for n, _ in NETWORKS])
def test_exercises_markdown_sheet_and_key_parse_in_mathjax(generated, name):
    from mathjax_util import markdown_math, mathjax_errors

    _, _, folder, _ = generated[name]
    formulas = []
    for file in ("exercises.md", "exercises-key.md"):
        formulas += markdown_math((folder / file).read_text())
    assert len(formulas) > 50
    assert mathjax_errors(formulas) == []


def test_exercises_quiz_questions_carry_their_network_and_values(generated):
    """A quiz question stands alone: each one shows the network and its variant's numbers."""
    _, net, folder, doc = generated["sigmoid-half_sse"]
    root = etree.parse(str(folder / "exercises-moodle.xml")).getroot()
    texts = [q.findtext("questiontext/text") for q in root.findall("question")[1:]]
    per_variant = len(doc["variants"][0]["questions"]) + 1  # and the cloze question
    for i, v in enumerate(doc["variants"]):
        for text in texts[i * per_variant:(i + 1) * per_variant]:
            assert f"Variant {v['seed']}:" in text and net.spec.describe() in text
            assert r"\(W^{(1)} = \begin{pmatrix} " + f"{v['values']['W1'][0][0]:.4g}" in text
            assert r"\(\eta = " in text
    with zipfile.ZipFile(folder / "exercises-qti.zip") as z:
        assessment = etree.fromstring(z.read("assessment.xml"))
    ns = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
    sections = assessment.findall(".//q:section/q:section", ns)
    assert [s.get("title") for s in sections] == [f"Variant {v['seed']}" for v in doc["variants"]]
    for section, v in zip(sections, doc["variants"]):
        for text in section.findall(".//q:presentation/q:material/q:mattext", ns):
            assert f"Variant {v['seed']}:" in text.text


def test_exercises_formula_key_after_softmax_is_the_textbook_p_minus_y(generated):
    from derive.render.printing import to_text

    _, net, _, doc = generated["tanh-softmax-ce"]
    for q in questions(doc, "formula"):
        key = q["options"][q["correct"]]
        assert key == to_text(net.gradient(q["target"]).simplified)
        assert re.search(r"\(a2\[\d\] - y\[\d\]\)", key), key
