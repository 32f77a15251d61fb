"""Colab editions (``tools/colab.py``, ``make colab``): one per chapter and
variant, no MyST left, no solution in the student's, none lagging its chapter;
each conversion on a small example; the site's Colab button."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from pybtex.database import parse_string

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "_ext"))
import colab_button  # noqa: E402
import nbtools  # noqa: E402

import colab  # noqa: E402

SITE = "https://aigc-course.github.io/aigc-course/"
CHAPTERS = [p.relative_to(ROOT / "notebooks") for p in nbtools.notebooks()]
# MyST left over, found independently of the converter's own patterns: a role
# not inside inline code, a directive fence, a (label)= target
ROLE = re.compile(r"(?<!`)\{[a-z][\w:.-]*\}`")
DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\s*\{", re.MULTILINE)
TARGET = re.compile(r"^\s*\([^()\s]+\)=\s*$", re.MULTILINE)


def committed(variant: str, rel: Path) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "colab" / variant / rel, as_version=4)


@pytest.fixture(scope="module")
def book() -> colab.Book:
    return colab.Book.load()


# ---------------------------------------------------------------------------
# the committed editions


def test_site_url_comes_from_the_repository() -> None:
    assert colab.SITE_URL == SITE
    assert (
        colab.site_url("https://github.com/Org/repo.git")
        == "https://org.github.io/repo/"
    )
    with pytest.raises(ValueError, match="not a GitHub repository URL"):
        colab.site_url("https://gitlab.com/org/repo")


@pytest.mark.parametrize("variant", colab.VARIANTS)
def test_every_chapter_has_an_edition_and_nothing_else(variant: str) -> None:
    written = {
        p.relative_to(ROOT / "colab" / variant)
        for p in (ROOT / "colab" / variant).rglob("*.ipynb")
    }
    assert written == set(CHAPTERS), "run make colab"


def test_no_edition_lags_its_chapter(book: colab.Book) -> None:
    stale = [
        f"colab/{variant}/{Path(docname).relative_to('notebooks')}.ipynb"
        for (docname, variant), text in colab.editions(book).items()
        if colab.colab_path(docname, variant).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run make colab: {stale}"


@pytest.mark.parametrize("variant", colab.VARIANTS)
def test_no_myst_and_no_outputs_left(variant: str) -> None:
    problems = []
    for rel in CHAPTERS:
        for i, cell in enumerate(committed(variant, rel).cells):
            if cell.cell_type == "code":
                if cell.outputs or cell.execution_count is not None:
                    problems.append(f"{rel} cell {i}: outputs kept")
                continue
            left = ROLE.findall(cell.source) + DIRECTIVE.findall(cell.source)
            left += TARGET.findall(cell.source)
            if left:
                problems.append(f"{rel} cell {i}: {left}")
    assert not problems


def test_the_student_edition_has_no_solution() -> None:
    for rel in CHAPTERS:
        source = nbformat.read(ROOT / "notebooks" / rel, as_version=4)
        answers = [
            c.source for c in source.cells if nbtools.SOLUTION in nbtools.tags(c)
        ]
        student = committed("student", rel)
        text = "\n".join(c.source for c in student.cells)
        assert not [c for c in student.cells if nbtools.SOLUTION in nbtools.tags(c)]
        assert "Reference solution" not in text, rel
        assert not colab.TEACHER_ONLY.search(text), rel
        assert not [a for a in answers if a.strip() in text], rel


def test_the_teacher_edition_collapses_each_solution() -> None:
    for rel in CHAPTERS:
        source = nbformat.read(ROOT / "notebooks" / rel, as_version=4)
        solutions = [
            c.source
            for c in source.cells
            if c.cell_type == "code" and nbtools.SOLUTION in nbtools.tags(c)
        ]
        forms = [
            c.source.split("\n", 1)[1]
            for c in committed("teacher", rel).cells
            if c.source.startswith(colab.SOLUTION_TITLE + "\n")
        ]
        assert forms == solutions, rel


# ---------------------------------------------------------------------------
# each conversion, on small examples

BIB = r"""
@inproceedings{goodfellow2014generative,
  author = {Goodfellow, Ian and Pouget-Abadie, Jean and Mirza, Mehdi},
  title = {Generative Adversarial Nets}, year = {2014}}
@article{kingma2014auto,
  author = {Kingma, Diederik P. and Welling, Max},
  title = {Auto-Encoding Variational {Bayes}}, year = {2014}}
@article{serra2020input,
  author = {Serr{\`a}, Joan}, title = {Input Complexity}, year = {2020}}
@misc{nobody,
  title = {An Unsigned {Report}}, year = {2021}}
"""
GLOSSARY = """\
# Glossary

```{glossary}
:sorted:

GAN
generative adversarial network
  **生成对抗网络**. Two networks ...

DALL·E
  A text-to-image model.
```
"""
SCHOLAR = f"{SITE}book/bibliography.html"


@pytest.fixture
def small() -> colab.Book:
    return colab.Book(
        glue={
            "acc": ("notebooks/01_p/this", "0.97444"),
            "steps": ("notebooks/02_q/other", "3000"),
        },
        seconds={"notebooks/01_p/this": 83.0},
        titles={"notebooks/01_p/this": "This", "notebooks/02_q/other": "The other"},
        terms=colab.glossary_anchors(GLOSSARY),
        bib=dict(parse_string(BIB, "bibtex").entries),
    )


def md(book: colab.Book, text: str, variant: str = "teacher") -> str:
    return colab.Converter(book, "notebooks/01_p/this", variant).markdown(text)


def test_glue_writes_the_number_in_with_its_format(small: colab.Book) -> None:
    assert (
        md(small, "{glue:text}`acc:.1%` and {glue:text}`acc:.3f`") == "97.4% and 0.974"
    )
    assert md(small, "{glue:text}`acc`") == "0.97444"
    assert md(small, "{glue:text}`../02_q/other.ipynb::steps:,.0f`") == "3,000"
    with pytest.raises(ValueError, match="glued by notebooks/02_q/other"):
        md(small, "{glue:text}`steps:.0f`")
    with pytest.raises(ValueError, match="nothing glued as 'missing'"):
        md(small, "{glue:text}`missing`")


def test_doc_links_to_the_page_with_its_title(small: colab.Book) -> None:
    other = f"{SITE}notebooks/02_q/other.html"
    assert md(small, "see {doc}`../02_q/other`") == f"see [The other]({other})"
    assert md(small, "{doc}`that one <../02_q/other>`") == f"[that one]({other})"
    with pytest.raises(ValueError, match="no page notebooks/02_q/gone"):
        md(small, "{doc}`../02_q/gone`")


def test_term_links_to_the_glossary_anchor(small: colab.Book) -> None:
    glossary = f"{SITE}book/glossary.html"
    assert md(small, "{term}`GAN`") == f"[GAN]({glossary}#term-GAN)"
    assert md(small, "{term}`GANs <generative adversarial\nnetwork>`") == (
        f"[GANs]({glossary}#term-generative-adversarial-network)"
    )
    assert md(small, "{term}`DALL·E`") == f"[DALL·E]({glossary}#term-DALLE)"
    with pytest.raises(ValueError, match="not in the glossary"):
        md(small, "{term}`VAE`")


def test_cite_gives_author_and_year_linked_to_the_references(
    small: colab.Book,
) -> None:
    assert md(small, "{cite:t}`goodfellow2014generative`") == (
        f"[Goodfellow et al. (2014)]({SCHOLAR})"
    )
    both = (
        f"([Goodfellow et al., 2014]({SCHOLAR}); [Kingma and Welling, 2014]({SCHOLAR}))"
    )
    assert md(small, "{cite:p}`goodfellow2014generative, kingma2014auto`") == both
    assert md(small, "{cite}`goodfellow2014generative,kingma2014auto`") == both
    assert md(small, "{cite}`serra2020input`") == f"([Serrà, 2020]({SCHOLAR}))"
    assert md(small, "{cite:t}`nobody`") == f"[An Unsigned Report (2021)]({SCHOLAR})"
    with pytest.raises(ValueError, match="no reference 'nope'"):
        md(small, "{cite}`nope`")


def test_lit_runtime_labels_and_code_spans(small: colab.Book) -> None:
    assert md(small, "in {lit}`1998`, {runtime}`this`") == "in 1998, about 1 minute"
    assert (
        md(small, "(sec-a)=\n# A\n\n`{W}` and `{glue}`") == "# A\n\n`{W}` and `{glue}`"
    )
    code = "```python\nprint(f'{x}')  # {doc}`not a role`\n```"
    assert md(small, code) == code


def test_admonition_becomes_a_bold_title_over_its_text(small: colab.Book) -> None:
    text = ":::{admonition} Not the loss\n:class: warning\nBody $x$ {lit}`7`.\n:::"
    assert md(small, "Before.\n\n" + text + "\n\nAfter.") == (
        "Before.\n\n**Not the loss**\n\nBody $x$ 7.\n\nAfter."
    )
    assert md(small, "```{note}\nMind it.\n```") == "**Note**\n\nMind it."


def test_figure_becomes_an_image_with_its_caption(small: colab.Book) -> None:
    text = (
        "```{figure} img/a.png\n:alt: Samples\n:width: 80%\n\n"
        "A {term}`GAN`'s samples.\n```"
    )
    raw = "https://raw.githubusercontent.com/aigc-course/aigc-course/main"
    assert md(small, text) == (
        f"![Samples]({raw}/notebooks/01_p/img/a.png)\n\n"
        f"*A [GAN]({SITE}book/glossary.html#term-GAN)'s samples.*"
    )


def test_dropdown_for_teachers_only_in_the_teachers_edition(
    small: colab.Book,
) -> None:
    text = (
        "1. Why?\n\n```{dropdown} Suggested answers (for teachers)\n"
        "Because {glue:text}`acc:.2f`.\n```\n"
    )
    assert md(small, text, "student") == "1. Why?"
    assert md(small, text, "teacher") == (
        "1. Why?\n\n#### Suggested answers (for teachers)\n\nBecause 0.97.\n"
    )
    hint = "```{dropdown} A hint\nLook at the axes.\n```"
    assert md(small, hint, "student") == "**A hint**\n\nLook at the axes."


def test_unknown_role_or_directive_is_an_error(small: colab.Book) -> None:
    with pytest.raises(ValueError, match=r"unknown MyST role \{numref\}"):
        md(small, "see {numref}`fig-a`")
    with pytest.raises(ValueError, match=r"unknown MyST directive \{tabbed\}"):
        md(small, "```{tabbed} A\nx\n```")


def test_both_variants_of_a_small_notebook(small: colab.Book) -> None:
    small.notebooks["notebooks/01_p/this"] = new_notebook(
        cells=[
            new_markdown_cell("# This\n\nAccuracy {glue:text}`acc:.0%`."),
            new_code_cell("import torch", execution_count=1),
            new_code_cell("answer = None", metadata={"tags": ["exercise"]}),
            new_code_cell("answer = 42", metadata={"tags": ["solution", "hide-input"]}),
            new_markdown_cell(
                "```{dropdown} Why (for teachers)\nIt is.\n```",
                metadata={"tags": ["solution"]},
            ),
        ],
        metadata={"aigc": {"wall_seconds": 83.0}},
    )
    student = colab.colab_notebook(small, "notebooks/01_p/this", "student")
    teacher = colab.colab_notebook(small, "notebooks/01_p/this", "teacher")
    assert [c.source for c in student.cells[1:]] == [
        "# This\n\nAccuracy 97%.",
        "import torch",
        "answer = None",
    ]
    assert "student version" in student.cells[0].source
    assert teacher.cells[4].source == f"{colab.SOLUTION_TITLE}\nanswer = 42"
    assert teacher.cells[5].source == "#### Why (for teachers)\n\nIt is."
    assert all(c.get("execution_count") is None for c in teacher.cells)
    record = teacher.metadata[colab.META_KEY]
    assert record["source"] == "notebooks/01_p/this.ipynb"
    assert record["source_sha256"] == student.metadata[colab.META_KEY]["source_sha256"]
    assert "aigc" not in teacher.metadata
    small.glue["acc"] = ("notebooks/01_p/this", "0.5")  # a re-run moves the number
    again = colab.colab_notebook(small, "notebooks/01_p/this", "student")
    assert again.metadata[colab.META_KEY]["source_sha256"] != record["source_sha256"]


# ---------------------------------------------------------------------------
# the website's Colab button

LAUNCH = "https://colab.research.google.com/github/org/repo/blob/main/"


def test_colab_urls_point_to_the_editions() -> None:
    assert colab_button.colab_urls(f"{LAUNCH}notebooks/05_gans/dcgan.ipynb") == {
        "student": f"{LAUNCH}colab/student/05_gans/dcgan.ipynb",
        "teacher": f"{LAUNCH}colab/teacher/05_gans/dcgan.ipynb",
    }
    assert colab_button.colab_urls(f"{LAUNCH}book/faq.md") == {}


def test_the_launch_menu_offers_both_editions(tmp_path: Path) -> None:
    class App:
        srcdir = str(tmp_path)

    def context() -> dict:
        colab_link = {
            "type": "link",
            "text": "Colab",
            "url": f"{LAUNCH}notebooks/05_gans/dcgan.ipynb",
        }
        return {
            "header_buttons": [{"label": "launch-buttons", "buttons": [colab_link]}]
        }

    page = context()
    colab_button.point_to_editions(
        App(), "notebooks/05_gans/dcgan", "page.html", page, None
    )
    assert page == context(), "no edition written: the theme's link stays"

    edition = tmp_path / "colab" / "student" / "05_gans" / "dcgan.ipynb"
    edition.parent.mkdir(parents=True)
    edition.write_text("{}")
    colab_button.point_to_editions(
        App(), "notebooks/05_gans/dcgan", "page.html", page, None
    )
    buttons = page["header_buttons"][0]["buttons"]
    assert [(b["text"], b["url"]) for b in buttons] == [
        ("Colab", f"{LAUNCH}colab/student/05_gans/dcgan.ipynb"),
        ("Colab (teacher)", f"{LAUNCH}colab/teacher/05_gans/dcgan.ipynb"),
    ]
