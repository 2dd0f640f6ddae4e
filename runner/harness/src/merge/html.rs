//! The merged matrix as one self-contained page: inline CSS, no script, no
//! font or image from the network (and a Content-Security-Policy that would
//! refuse them). The summary comes first, then the columns, then the rows
//! that differ from Linux with every reason as a numbered note under the
//! table, then the scenarios that pass everywhere. Every string from a
//! report goes through `text::html`.

use super::matrix::{release_text, target_text, Counts, Matrix, RowKind, Shown};
use crate::baseline::Movement;
use crate::expected::Mark;
use crate::reporting::text::{clip, html};
use orphanage_scenario::Outcome;
use std::fmt::Write;

/// The longest reason a note shows; the rest is counted, not shown.
const REASON_CHARS: usize = 8000;

/// A kernel release, target or version as a header shows it: a machine
/// that sends a kilobyte of release string does not get a kilobyte of header.
fn short(text: &str) -> String {
    html(&clip(text, 120))
}

const STYLE: &str = "\
:root{color-scheme:light dark;--line:#d0d7de;--muted:#57606a;--head:#f6f8fa;\
--pass:#dafbe1;--pass-fg:#116329;--fail:#ffd7d5;--fail-fg:#82071e;--unsupported:#eaeef2;\
--unsupported-fg:#424a53;--broken:#ffe2b3;--broken-fg:#7d4e00;--missing-fg:#6e7781}\
@media (prefers-color-scheme:dark){:root{--line:#30363d;--muted:#8b949e;--head:#161b22;\
--pass:#12261e;--pass-fg:#56d364;--fail:#3c1618;--fail-fg:#ff7b72;--unsupported:#21262d;\
--unsupported-fg:#b1bac4;--broken:#341a00;--broken-fg:#e3b341;--missing-fg:#8b949e}}\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1.5em 2em 4em;background:Canvas;color:CanvasText}\
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}\
code,.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}\
.lede{color:var(--muted);margin:.2em 0 1em}\
.totals{display:flex;flex-wrap:wrap;gap:.5em;margin:.6em 0}\
.totals span{padding:.3em .7em;border-radius:1em;font-weight:600}\
.verdict{font-size:1.1em;font-weight:600;margin:.6em 0}\
.scroll{overflow:auto;max-height:85vh;border:1px solid var(--line)}\
table{border-collapse:separate;border-spacing:0}\
th,td{border-right:1px solid var(--line);border-bottom:1px solid var(--line);padding:.25em .55em;text-align:left;vertical-align:top}\
table.list th{background:var(--head)}\
table.matrix thead th{position:sticky;top:0;background:var(--head);z-index:2;vertical-align:bottom;font-weight:normal;min-width:7em;max-width:14em}\
table.matrix .scenario{position:sticky;left:0;background:Canvas;z-index:1;min-width:18em;max-width:30em}\
table.matrix thead th.scenario{z-index:3;background:var(--head)}\
tr.area th{background:var(--head);text-align:left;font-size:1.05em;position:sticky;left:0}\
.kernel{font-weight:700;overflow-wrap:anywhere}table.list .kernel{min-width:12em;max-width:22em}.target{color:var(--muted);word-break:break-word}\
.file{color:var(--muted);font-size:.85em;display:block;word-break:break-all}\
.counts{display:block;margin-top:.3em}\
.counts b{display:inline-block;padding:0 .3em;margin:.1em .15em 0 0;border-radius:.3em;font-weight:600;white-space:nowrap}\
.pass{background:var(--pass);color:var(--pass-fg)}.fail{background:var(--fail);color:var(--fail-fg)}\
.unsupported{background:var(--unsupported);color:var(--unsupported-fg)}.broken{background:var(--broken);color:var(--broken-fg)}\
.missing{color:var(--missing-fg);font-style:italic;background:repeating-linear-gradient(135deg,transparent 0 6px,var(--unsupported) 6px 8px)}\
td.o{white-space:nowrap;font-weight:600}td.o a{font-weight:normal;text-decoration:none}\
.tag{display:inline-block;font-size:.78em;font-weight:600;padding:0 .35em;border-radius:.3em;margin-left:.3em;border:1px solid currentColor}\
.regressed{outline:2px solid var(--fail-fg);outline-offset:-2px}\
ol.notes{padding-left:3em}ol.notes li{margin:.6em 0}\
ol.notes pre{white-space:pre-wrap;word-break:break-word;margin:.25em 0;padding:.4em .6em;background:var(--head);border:1px solid var(--line);border-radius:.3em}\
.where{color:var(--muted);font-size:.9em}\
li:target{outline:2px solid var(--fail-fg);outline-offset:4px}\
.same p{margin:.3em 0}footer{margin-top:3em;color:var(--muted);font-size:.85em}";

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::Unsupported => "unsupported",
        Outcome::Broken => "BROKEN",
    }
}

fn counts_html(c: &Counts) -> String {
    let mut out = format!(
        "<span class=\"counts\"><b class=\"pass\">{} pass</b><b class=\"fail\">{} fail</b><b class=\"unsupported\">{} unsupported</b><b class=\"broken\">{} broken</b>",
        c.pass, c.fail, c.unsupported, c.broken
    );
    if c.missing > 0 {
        let _ = write!(out, "<b class=\"missing\">{} missing</b>", c.missing);
    }
    out.push_str("</span>");
    out
}

fn cell_html(shown: &Shown<'_>) -> String {
    let Some(r) = shown.record else {
        return "<td class=\"o missing\">missing</td>".into();
    };
    let mut class = r.outcome.as_str().to_string();
    if shown.movement == Some(Movement::Regression) {
        class.push_str(" regressed");
    }
    let mut out = format!("<td class=\"o {class}\">{}", outcome_word(r.outcome));
    if let Some(kind) = r.kind {
        let _ = write!(out, " ({})", kind.as_str());
    }
    if let Some(n) = shown.note {
        let _ = write!(out, " <a href=\"#note-{n}\">[{n}]</a>");
    }
    match shown.mark {
        Some(Mark::Expected) => out.push_str("<span class=\"tag\">expected</span>"),
        Some(Mark::Unexpected) if r.outcome != Outcome::Pass => {
            out.push_str("<span class=\"tag\">unexpected</span>")
        }
        Some(Mark::Stale) => out.push_str("<span class=\"tag\">stale entry</span>"),
        _ => {}
    }
    match shown.movement {
        Some(Movement::Regression) => out.push_str("<span class=\"tag\">regressed</span>"),
        Some(Movement::Fix) => out.push_str("<span class=\"tag\">fixed</span>"),
        Some(Movement::Changed) => out.push_str("<span class=\"tag\">changed</span>"),
        Some(Movement::New) => out.push_str("<span class=\"tag\">new</span>"),
        _ => {}
    }
    out.push_str("</td>");
    out
}

pub fn render(m: &Matrix<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>orphanage conformance matrix</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body>\n");
    summary(&mut out, m);
    columns(&mut out, m);
    baseline(&mut out, m);
    differences(&mut out, m);
    same_everywhere(&mut out, m);
    let _ = write!(
        out,
        "<footer>Written by <code>orphanage merge</code> {} from {} report(s). Outcomes: pass (as Linux), fail (the target broke Linux's promise), unsupported (a probed feature is missing), broken (the harness or agent failed), missing (the scenario is not in that report).</footer>\n</body></html>\n",
        html(env!("CARGO_PKG_VERSION")),
        m.reports.len()
    );
    out
}

fn summary(out: &mut String, m: &Matrix<'_>) {
    let (kernels, targets) = m.kernels_and_targets();
    let scenarios = m.rows().count();
    let t = m.totals();
    let _ = write!(
        out,
        "<header><h1>orphanage conformance matrix</h1>\n<p class=\"lede\">Does each kernel and runtime manage processes the way Linux promises? {} column(s): {kernels} kernel release(s), {targets} target(s), from {} report(s); {scenarios} scenario(s) in {} area(s).</p>\n",
        m.columns.len(),
        m.reports.len(),
        m.areas.len()
    );
    let differing = m.differing_rows();
    let _ = writeln!(
        out,
        "<p class=\"verdict\">{}</p>",
        if differing == 0 {
            "Every scenario passes in every column.".to_string()
        } else {
            format!(
                "{differing} of {scenarios} scenarios differ from Linux in at least one column."
            )
        }
    );
    let _ = writeln!(
        out,
        "<div class=\"totals\"><span class=\"pass\">{} pass</span><span class=\"fail\">{} fail</span><span class=\"unsupported\">{} unsupported</span><span class=\"broken\">{} broken</span><span class=\"missing\">{} missing</span></div>",
        t.pass, t.fail, t.unsupported, t.broken, t.missing
    );
    if let (Some((path, _)), Some((expected, unexpected, stale))) = (m.expected, m.judgement()) {
        let _ = writeln!(
            out,
            "<p>Against the expected differences of <code>{}</code>: {expected} expected, <b>{unexpected} unexpected</b>, {stale} stale (listed, but passing now).</p>",
            html(&path.display().to_string())
        );
    }
    if let Some(c) = &m.baseline {
        let _ = writeln!(
            out,
            "<p>Against the baseline: <b>{} regression(s)</b>, {} fixed, {} changed, {} new, {} removed (<a href=\"#baseline\">list</a>).</p>",
            c.count(Movement::Regression),
            c.count(Movement::Fix),
            c.count(Movement::Changed),
            c.count(Movement::New),
            c.count(Movement::Removed)
        );
    }
    out.push_str("</header>\n");
}

fn columns(out: &mut String, m: &Matrix<'_>) {
    out.push_str("<section id=\"columns\"><h2>Columns</h2>\n<div class=\"scroll\"><table class=\"list\"><thead><tr><th>#</th><th>kernel release</th><th>target</th><th>kind</th><th>counts</th><th>report</th></tr></thead><tbody>\n");
    for c in &m.columns {
        let report = m.reports.iter().find(|r| r.path == c.source);
        let _ = write!(
            out,
            "<tr id=\"col-{}\"><td>#{}</td><td class=\"kernel\">{}</td><td>{}<span class=\"target\"> · {}</span></td><td>{}</td><td>{}</td><td class=\"mono\">{}",
            c.number,
            c.number,
            short(release_text(c.cell)),
            short(&c.cell.name),
            short(&target_text(c.cell)),
            short(&c.cell.kind),
            counts_html(&c.counts),
            html(&c.source.display().to_string()),
        );
        if let Some(r) = report {
            let _ = write!(
                out,
                "<span class=\"file\">started {}, orphanage {}</span>",
                html(&r.started_at),
                html(&r.orphanage)
            );
        }
        if let Some(first) = c.same_as {
            let _ = write!(
                out,
                "<span class=\"file\">same kernel and target as #{first}: both kept</span>"
            );
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table></div></section>\n");
}

fn baseline(out: &mut String, m: &Matrix<'_>) {
    let Some(c) = &m.baseline else {
        return;
    };
    out.push_str("<section id=\"baseline\"><h2>Against the baseline</h2>\n");
    if c.moved.is_empty() && c.new_cells.is_empty() && c.removed_cells.is_empty() {
        out.push_str("<p>Nothing moved.</p></section>\n");
        return;
    }
    out.push_str("<div class=\"scroll\"><table class=\"list\"><thead><tr><th>what</th><th>column</th><th>scenario</th><th>before</th><th>now</th><th>reason now</th></tr></thead><tbody>\n");
    let word = |o: Option<Outcome>| o.map_or("-", Outcome::as_str);
    for moved in &c.moved {
        let class = match moved.movement {
            Movement::Regression => "fail",
            Movement::Fix => "pass",
            _ => "",
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"{class}\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            moved.movement.as_str(),
            html(&moved.cell),
            html(&moved.scenario),
            word(moved.before),
            word(moved.after),
            html(&clip(&moved.reason, REASON_CHARS)),
        );
    }
    for cell in &c.new_cells {
        let _ = writeln!(
            out,
            "<tr><td>new column</td><td>{}</td><td colspan=\"4\">not in the baseline, not compared</td></tr>",
            html(cell)
        );
    }
    for cell in &c.removed_cells {
        let _ = writeln!(
            out,
            "<tr><td>removed column</td><td>{}</td><td colspan=\"4\">in the baseline only</td></tr>",
            html(cell)
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

fn differences(out: &mut String, m: &Matrix<'_>) {
    let differing = m.differing_rows();
    let _ = writeln!(
        out,
        "<section id=\"differences\"><h2>Differences from Linux ({differing} scenario(s))</h2>"
    );
    if differing == 0 {
        out.push_str("<p>None: every scenario passes in every column.</p></section>\n");
        return;
    }
    out.push_str("<p class=\"lede\">Scenarios that fail, break, are unsupported or missing in at least one column, grouped by area: fails first, then those where columns disagree. A number in brackets is the note below that gives the reason.</p>\n");
    out.push_str("<div class=\"scroll\"><table class=\"matrix\"><thead><tr><th class=\"scenario\">scenario</th>");
    for c in &m.columns {
        let _ = write!(
            out,
            "<th><a href=\"#col-{}\">#{}</a> <span class=\"kernel\">{}</span><br>{}<br><span class=\"target\">{}</span>{}</th>",
            c.number,
            c.number,
            short(release_text(c.cell)),
            short(&c.cell.name),
            short(&target_text(c.cell)),
            counts_html(&c.counts)
        );
    }
    out.push_str("</tr></thead><tbody>\n");
    for area in &m.areas {
        let rows: Vec<_> = area
            .rows
            .iter()
            .filter(|r| r.kind != RowKind::AsLinux)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<tr class=\"area\"><th colspan=\"{}\">{} <span class=\"target\">{} of {} scenario(s) differ</span></th></tr>",
            m.columns.len() + 1,
            html(&area.name),
            rows.len(),
            area.rows.len()
        );
        for row in rows {
            let _ = write!(
                out,
                "<tr><td class=\"scenario\"><span class=\"mono\">{}</span><span class=\"file\">{}</span></td>",
                html(&row.scenario),
                html(&row.file)
            );
            for i in 0..m.columns.len() {
                out.push_str(&cell_html(&m.shown(i, &row.scenario)));
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</tbody></table></div>\n<h3>Reasons</h3>\n<ol class=\"notes\">\n");
    for note in &m.notes {
        let places: Vec<String> = note
            .cells
            .iter()
            .map(|(scenario, columns)| {
                let cols: Vec<String> = columns.iter().map(|c| format!("#{c}")).collect();
                format!(
                    "<span class=\"mono\">{}</span> in {}",
                    html(scenario),
                    cols.join(", ")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<li id=\"note-{}\"><span class=\"tag {}\">{}</span> <span class=\"where\">{}</span><pre>{}</pre></li>",
            note.number,
            note.outcome.as_str(),
            note.outcome.as_str(),
            places.join("; "),
            html(&clip(&note.reason, REASON_CHARS))
        );
    }
    out.push_str("</ol></section>\n");
}

fn same_everywhere(out: &mut String, m: &Matrix<'_>) {
    let same = m.rows().filter(|(_, r)| r.kind == RowKind::AsLinux).count();
    let _ = writeln!(
        out,
        "<section id=\"same\" class=\"same\"><h2>As Linux in every column ({same} scenario(s))</h2>"
    );
    for area in &m.areas {
        let names: Vec<String> = area
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::AsLinux)
            .map(|r| format!("<span class=\"mono\">{}</span>", html(&r.scenario)))
            .collect();
        if !names.is_empty() {
            let _ = writeln!(
                out,
                "<p><b>{}</b> ({}): {}</p>",
                html(&area.name),
                names.len(),
                names.join(", ")
            );
        }
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::super::matrix::tests::{report, two_reports};
    use super::*;

    #[test]
    fn the_page_has_the_summary_columns_differences_and_notes() {
        let reports = two_reports();
        let m = Matrix::new(&reports, None, None);
        let page = render(&m);
        assert!(
            page.contains("2 of 3 scenarios differ from Linux"),
            "{page}"
        );
        assert!(page.contains("<td class=\"o fail\">FAIL <a href=\"#note-1\">[1]</a></td>"));
        assert!(page.contains("<td class=\"o missing\">missing</td>"));
        assert!(page.contains("<li id=\"note-1\"><span class=\"tag fail\">fail</span>"));
        assert!(page.contains("<pre>write succeeded</pre>"));
        assert!(page.contains("<b class=\"pass\">2 pass</b>"));
        // Differences come before what passes everywhere.
        let diff = page.find("id=\"differences\"").unwrap();
        let same = page.find("id=\"same\"").unwrap();
        assert!(diff < same && page[same..].contains("zombie::reaped"));
        assert!(!page[diff..same].contains(">zombie::reaped<"));
        // Self-contained: nothing to fetch, nothing to run.
        assert!(!page.contains("<script") && !page.contains("http:") && !page.contains("https:"));
        assert!(!page.contains("url("));
    }

    #[test]
    fn nothing_from_a_report_becomes_markup() {
        let nasty = "<script>document.title='pwned'</script>\"q\n\u{1b}[31mred\u{1b}[0m<img src=x onerror=alert(1)>";
        let mut r = report(
            "<a.json>",
            &[("<b>runc</b>", "runtime", nasty)],
            &[("<b>runc</b>", "x::<i>y</i>", Outcome::Fail, nasty)],
        );
        r.cells[0].version = Some(nasty.into());
        r.cells[0].init = Some(nasty.into());
        r.started_at = nasty.into();
        let reports = vec![r];
        let page = render(&Matrix::new(&reports, None, None));
        for raw in [
            "<script", "<img", "<b>runc", "<i>y", "\u{1b}", "<a.json>", "'pwned'",
        ] {
            assert!(!page.contains(raw), "{raw} got through");
        }
        assert!(page.contains(
            "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;&quot;q\nred&lt;img"
        ));
    }
}
