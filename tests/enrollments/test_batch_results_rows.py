"""The results table's rows, built by a template tag rather than a template loop:
every value escaped, errors marked, notes shown."""

from django.template import Context, Template


def _render(rows):
    return Template("{% load batch_results %}{% batch_result_rows rows %}").render(Context({"rows": rows}))


def test_rows_escape_every_value_and_mark_errors():
    html = _render([
        {"identifier": "<b>ann</b>", "outcome": "Enrolled", "username": "ann&co", "email": "a@example.com", "note": "", "error": False},
        {"identifier": "x@", "outcome": "Invalid <email>", "username": "", "email": "", "note": "", "error": True},
        {"identifier": "ANN", "outcome": "Named twice", "username": "ann", "email": "a@example.com", "note": "same person as <b>ann</b>",
         "error": False},
    ])
    rows = html.split("\n")
    assert rows[0] == ('<tr class=""><td class="identifier-cell">&lt;b&gt;ann&lt;/b&gt;</td><td>Enrolled</td><td>ann&amp;co</td>'
                       '<td class="identifier-cell">a@example.com</td></tr>')
    assert rows[1].startswith('<tr class="table-danger">') and "Invalid &lt;email&gt;" in rows[1]
    assert '<span class="text-muted small">(same person as &lt;b&gt;ann&lt;/b&gt;)</span>' in rows[2]
    assert "<b>" not in html


def test_no_rows_no_html():
    assert _render([]) == ""
