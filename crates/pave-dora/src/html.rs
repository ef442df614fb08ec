//! A self-contained HTML page of a report: tables, inline SVG trend charts, the value-stream
//! split, findings and the heuristics used. No scripts, fonts or images from the network.

use std::fmt::Write;

use crate::assess::Finding;
use crate::{Figures, Report};

/// What goes on the page.
#[derive(Debug)]
pub struct Page<'a> {
    pub title: &'a str,
    pub subtitle: String,
    pub report: &'a Report,
    pub findings: &'a [Finding],
    /// Heuristics and other choices, one sentence each.
    pub notes: &'a [String],
    /// With it, the page prices recovery time.
    pub revenue_per_hour: Option<f64>,
    /// The unit of `revenue_per_hour` (`EUR`, `USD`), shown with every amount.
    pub currency: &'a str,
    /// What the reader must know before trusting the figures (a window too short to judge,
    /// mixed release lines, unresolved reverts), shown first.
    pub warnings: &'a [String],
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn hours(secs: Option<f64>) -> String {
    match secs {
        None => "—".into(),
        Some(s) if s < 3600.0 => format!("{:.0} min", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        Some(s) => format!("{:.1} days", s / 86_400.0),
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{:.1}%", r * 100.0))
}

fn level(l: &Option<crate::LevelRef>) -> String {
    l.as_ref().map_or("—".into(), |l| format!("<span class=\"lvl {0}\">{0}</span>", esc(&l.level)))
}

/// A small line or bar chart of one series; `None` values are gaps. `tips` (one per value)
/// replace the value in the hover text. The y axis is labelled at zero, half and the top,
/// the x axis at up to eight evenly spaced months.
fn chart(
    title: &str,
    unit: &str,
    labels: &[String],
    values: &[Option<f64>],
    tips: Option<&[String]>,
    bars: bool,
) -> String {
    let (w, h, pad) = (640.0, 170.0, 44.0);
    let max = values.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let max = if max <= 0.0 { 1.0 } else { max };
    let n = values.len().max(1) as f64;
    let x = |i: usize| pad + (w - 2.0 * pad) * (i as f64 + 0.5) / n;
    let y = |v: f64| h - pad + 4.0 - (h - 2.0 * pad) * v / max;
    let tip = |i: usize, v: f64| match tips.and_then(|t| t.get(i)) {
        Some(t) => esc(t),
        None => format!("{}: {} {}", esc(&labels[i]), trim(v), esc(unit)),
    };
    let mut svg = format!(
        "<figure><figcaption>{} ({})</figcaption><svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/>",
        esc(title),
        esc(unit),
        esc(title),
        b = h - pad + 4.0,
        r = w - pad,
    );
    for v in [0.0, max / 2.0, max] {
        let _ = write!(
            svg,
            "<line x1=\"{pad}\" y1=\"{y:.1}\" x2=\"{r}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            trim(v),
            y = y(v),
            r = w - pad,
            tx = pad - 4.0,
            ty = y(v) + 4.0,
        );
    }
    if bars {
        let bw = ((w - 2.0 * pad) / n * 0.7).max(1.0);
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" class=\"bar\"><title>{}</title></rect>",
                    x(i) - bw / 2.0,
                    y(*v),
                    (h - pad + 4.0 - y(*v)).max(0.0),
                    tip(i, *v)
                );
            }
        }
    } else {
        let mut path = String::new();
        let mut pen_up = true;
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(path, "{}{:.1},{:.1} ", if pen_up { "M" } else { "L" }, x(i), y(*v));
                    let _ = write!(
                        svg,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" class=\"dot\"><title>{}</title></circle>",
                        x(i),
                        y(*v),
                        tip(i, *v)
                    );
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let _ = write!(svg, "<path d=\"{path}\" class=\"line\"/>");
    }
    let step = labels.len().div_ceil(8).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % step == 0) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            x(i),
            h - 12.0,
            esc(label)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Months pooled for the rate charts: a month of one or two releases alone swings between 0 %
/// and 100 %, so each point is the rate over that month and the two before it.
const ROLLING_MONTHS: usize = 3;

/// The trailing [`ROLLING_MONTHS`] pooled rate of `rate` at each month, as a percentage,
/// with a hover text giving the counts behind it; `None` where no release was made.
fn rolling(
    series: &[Figures],
    labels: &[String],
    rate: impl Fn(&Figures) -> &crate::Rate,
) -> (Vec<Option<f64>>, Vec<String>) {
    let mut values = Vec::with_capacity(series.len());
    let mut tips = Vec::with_capacity(series.len());
    for i in 0..series.len() {
        let window = &series[i.saturating_sub(ROLLING_MONTHS - 1)..=i];
        let count: usize = window.iter().map(|f| rate(f).count).sum();
        let total: usize = window.iter().map(|f| rate(f).total).sum();
        values.push((total > 0).then(|| 100.0 * count as f64 / total as f64));
        tips.push(format!(
            "{}: {count} of {total} releases in the {} months to it{}",
            labels[i],
            window.len(),
            if total > 0 { format!(" ({:.0}%)", 100.0 * count as f64 / total as f64) } else { String::new() }
        ));
    }
    (values, tips)
}

/// `1224653958.33` → `1,224,653,958`; amounts under 100 keep two decimals.
fn grouped(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    if v.abs() < 100.0 {
        return format!("{v:.2}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

fn trim(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn totals_table(f: &Figures) -> String {
    let lt = &f.lead_time;
    let rt = &f.recovery_time;
    let df = &f.deployment_frequency;
    format!(
        "<table><thead><tr><th>Metric</th><th>Value</th><th>Level</th></tr></thead><tbody>\
         <tr><td>Deployment frequency</td><td>{} ({} deployments; {})</td><td>{}</td></tr>\
         <tr><td>Lead time for changes</td><td>median {}, p90 {} over {} commits</td><td>{}</td></tr>\
         <tr><td>Change failure rate</td><td>{} ({} of {})</td><td>{}</td></tr>\
         <tr><td>Failed deployment recovery time</td><td>median {}, p90 {} ({} recovered, {} open)</td><td>{}</td></tr>\
         <tr><td>Rework rate</td><td>{} ({} of {})</td><td>{}</td></tr>\
         </tbody></table>",
        if df.bucket == crate::TOO_SHORT {
            "no rate: the window is too short".to_owned()
        } else {
            format!("{:.2} per day, {:.1} per week", df.per_day, df.per_week)
        },
        df.deployments,
        df.bucket,
        level(&df.level),
        hours(lt.commits.median),
        hours(lt.commits.p90),
        lt.commits.count,
        level(&lt.level),
        pct(f.change_failure_rate.rate),
        f.change_failure_rate.count,
        f.change_failure_rate.total,
        level(&f.change_failure_rate.level),
        hours(rt.time.median),
        hours(rt.time.p90),
        rt.recovered,
        rt.open,
        level(&rt.level),
        pct(f.rework_rate.rate),
        f.rework_rate.count,
        f.rework_rate.total,
        level(&f.rework_rate.level),
    )
}

fn value_stream(f: &Figures) -> String {
    let parts = [
        ("commit → merge", f.lead_time.commit_to_merge.median),
        ("merge → deploy", f.lead_time.merge_to_deploy.median),
        ("deploy", f.lead_time.deploy_duration.median),
    ];
    let total: f64 = parts.iter().filter_map(|p| p.1).sum();
    if total <= 0.0 {
        return "<p>Not enough data for the value-stream split.</p>".into();
    }
    let mut svg = String::from("<svg viewBox=\"0 0 640 40\" role=\"img\" aria-label=\"value stream\">");
    let mut x = 0.0;
    for (i, (name, v)) in parts.iter().enumerate() {
        let Some(v) = v else { continue };
        let w = 640.0 * v / total;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"4\" width=\"{w:.1}\" height=\"28\" class=\"vs{i}\"><title>{name}: {}</title></rect>",
            hours(Some(*v))
        );
        x += w;
    }
    svg.push_str("</svg><p class=\"legend\">");
    for (i, (name, v)) in parts.iter().enumerate() {
        let _ = write!(svg, "<span class=\"key vs{i}\"></span>{} {} ", esc(name), hours(*v));
    }
    svg.push_str("</p>");
    svg
}

pub fn render(p: &Page<'_>) -> String {
    let r = p.report;
    let labels: Vec<String> = r.series.iter().map(|f| f.from.to_string().chars().take(7).collect()).collect();
    let series = |get: &dyn Fn(&Figures) -> Option<f64>| -> Vec<Option<f64>> { r.series.iter().map(get).collect() };
    let mut html = String::with_capacity(32 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
         body{{font:15px/1.45 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1b1f24}}\
         table{{border-collapse:collapse;width:100%;margin:1rem 0}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}\
         figure{{margin:1rem 0}}figcaption{{font-weight:600}}svg{{width:100%;height:auto;background:#fafbfc}}\
         .axis{{stroke:#999}}.tick{{font-size:11px;fill:#555}}.bar{{fill:#3b82f6}}.line{{fill:none;stroke:#3b82f6;stroke-width:2}}.dot{{fill:#1d4ed8}}\
         .lvl{{padding:.1rem .4rem;border-radius:.3rem;font-size:.85em}}.elite{{background:#bbf7d0}}.high{{background:#d9f99d}}.medium{{background:#fde68a}}.low{{background:#fecaca}}\
         .vs0{{fill:#60a5fa;background:#60a5fa}}.vs1{{fill:#f59e0b;background:#f59e0b}}.vs2{{fill:#10b981;background:#10b981}}\
         .key{{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}}.legend{{font-size:.9em}}\
         .grid{{stroke:#e5e7eb}}.warn{{background:#fef3c7;border-left:4px solid #f59e0b;padding:.5rem .8rem}}</style></head><body>\
         <h1>{title}</h1><p>{subtitle}</p>{warnings}<h2>Baseline</h2>{totals}",
        title = esc(p.title),
        subtitle = esc(&p.subtitle),
        totals = totals_table(&r.totals),
        warnings = p.warnings.iter().map(|w| format!("<p class=\"warn\">Warning: {}</p>", esc(w))).collect::<String>(),
    );
    if let Some(rate) = p.revenue_per_hour {
        let restored: Vec<i64> = p.findings.iter().filter_map(|f| f.recovery_seconds).collect();
        let h = restored.iter().sum::<i64>() as f64 / 3600.0;
        let unit = esc(p.currency);
        let _ = write!(
            html,
            "<h2>Cost of recovery time</h2><p>{} failures took {} hours to restore in all; at {} {unit} per hour \
             that is <strong>{} {unit}</strong>.</p>",
            restored.len(),
            grouped(h),
            grouped(rate),
            grouped(h * rate)
        );
    }
    html.push_str("<h2>Trends</h2>");
    html.push_str(&chart(
        "Deployments per month",
        "deployments",
        &labels,
        &series(&|f| Some(f.deployment_frequency.deployments as f64)),
        None,
        true,
    ));
    html.push_str(&chart(
        "Lead time for changes (median)",
        "hours",
        &labels,
        &series(&|f| f.lead_time.commits.median.map(|s| s / 3600.0)),
        None,
        false,
    ));
    let (cfr, cfr_tips) = rolling(&r.series, &labels, |f| &f.change_failure_rate);
    html.push_str(&chart(
        &format!("Change failure rate, trailing {ROLLING_MONTHS} months"),
        "%",
        &labels,
        &cfr,
        Some(&cfr_tips),
        false,
    ));
    html.push_str(&chart(
        "Failed deployment recovery time (median)",
        "hours",
        &labels,
        &series(&|f| f.recovery_time.time.median.map(|s| s / 3600.0)),
        None,
        false,
    ));
    let (rework, rework_tips) = rolling(&r.series, &labels, |f| &f.rework_rate);
    html.push_str(&chart(
        &format!("Rework rate, trailing {ROLLING_MONTHS} months"),
        "%",
        &labels,
        &rework,
        Some(&rework_tips),
        false,
    ));
    html.push_str("<h2>Value stream</h2>");
    html.push_str(&value_stream(&r.totals));
    let failed = p.findings.iter().filter(|f| f.recovery_seconds.is_some()).count();
    let _ = write!(
        html,
        "<h2>Failures found in the history</h2><p>{failed} failed release(s), fixed by {} fix(es); a release fixed more \
         than once recovered at its first fix, and each later fix is rework.</p>",
        p.findings.len()
    );
    if !p.findings.is_empty() {
        html.push_str("<table><thead><tr><th>Failed</th><th>Fixed by</th><th>Heuristic</th><th>Recovery</th><th>Evidence</th></tr></thead><tbody>");
        for f in p.findings {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.failed),
                esc(&f.fixed_by),
                f.heuristic,
                f.recovery_seconds.map_or_else(|| "— (already restored)".to_owned(), |s| hours(Some(s as f64))),
                esc(&f.detail)
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("<h2>How these figures were made</h2><ul>");
    for n in p.notes {
        let _ = write!(html, "<li>{}</li>", esc(n));
    }
    let _ = writeln!(html, "</ul><p>Benchmark: {}.</p></body></html>", esc(&r.benchmark));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped() {
        assert_eq!(grouped(1_224_653_958.33), "1,224,653,958");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(12.5), "12.50");
        assert_eq!(grouped(-1234.0), "-1,234");
    }

    /// A report of `months` months with `(failed, total)` releases each.
    fn report(months: &[(usize, usize)]) -> Report {
        let q = crate::Query {
            from: pave_model::Timestamp(0),
            to: pave_model::Timestamp(1),
            services: None,
            environments: Default::default(),
            series: None,
            explain: false,
            explicit_commits: true,
            flag_owners: None,
        };
        let facts = crate::Facts { deployments: &[], incidents: &[], changes: &[], flag_changes: &[] };
        let bench = crate::Benchmark::builtin("dora-2024").expect("table");
        let empty = crate::compute(facts, &q, &bench);
        let mut r = empty.clone();
        r.series = months
            .iter()
            .enumerate()
            .map(|(i, (failed, total))| {
                let mut f = empty.totals.clone();
                f.from = pave_model::Timestamp(i as i64 * 31 * 86_400_000);
                f.change_failure_rate.count = *failed;
                f.change_failure_rate.total = *total;
                f.rework_rate.count = *failed;
                f.rework_rate.total = *total;
                f
            })
            .collect();
        r
    }

    #[test]
    fn rate_charts_pool_three_months_and_show_the_counts() {
        // Months of one release each, alternately failed: alone they read 100 %, 0 %, 100 %.
        let r = report(&[(1, 1), (0, 1), (1, 1), (0, 2)]);
        let labels: Vec<String> = (1..=4).map(|m| format!("1970-0{m}")).collect();
        let (values, tips) = rolling(&r.series, &labels, |f| &f.change_failure_rate);
        let rounded: Vec<Option<i64>> = values.iter().map(|v| v.map(|v| v.round() as i64)).collect();
        assert_eq!(rounded, [Some(100), Some(50), Some(67), Some(25)]);
        assert_eq!(tips[3], "1970-04: 1 of 4 releases in the 3 months to it (25%)");
    }

    #[test]
    fn the_page_labels_axes_prices_with_a_unit_and_puts_warnings_first() {
        let months: Vec<(usize, usize)> = (0..24).map(|i| (i % 2, 1)).collect();
        let r = report(&months);
        let findings = [Finding {
            failed: "v1".into(),
            fixed_by: "v2".into(),
            heuristic: "hotfix",
            detail: "v2 is a patch release after v1".into(),
            recovery_seconds: Some(1_224_653_958 * 36 / 10),
        }];
        let warnings = ["the window is 1 s long".to_owned()];
        let page = render(&Page {
            title: "t",
            subtitle: String::new(),
            report: &r,
            findings: &findings,
            notes: &[],
            revenue_per_hour: Some(1000.0),
            currency: "EUR",
            warnings: &warnings,
        });
        assert!(page.contains("1,224,654 hours") && page.contains("<strong>1,224,653,958 EUR</strong>"), "{page}");
        assert!(page.find("Warning: the window is 1 s long") < page.find("<h2>Baseline"));
        assert!(page.contains("1 failed release(s), fixed by 1 fix(es)"), "{page}");
        // Eight month labels for 24 months, and the y axis at zero, half and the top.
        let deployments = &page[page.find("Deployments per month").expect("chart")..];
        let chart = &deployments[..deployments.find("</svg>").expect("end")];
        assert_eq!(chart.matches("text-anchor=\"middle\"").count(), 8, "{chart}");
        assert_eq!(chart.matches("class=\"grid\"").count(), 3, "{chart}");
    }
}
