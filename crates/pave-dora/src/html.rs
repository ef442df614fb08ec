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

/// A small line or bar chart of one series; `None` values are gaps.
fn chart(title: &str, unit: &str, labels: &[String], values: &[Option<f64>], bars: bool) -> String {
    let (w, h, pad) = (640.0, 170.0, 36.0);
    let max = values.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let max = if max <= 0.0 { 1.0 } else { max };
    let n = values.len().max(1) as f64;
    let x = |i: usize| pad + (w - 2.0 * pad) * (i as f64 + 0.5) / n;
    let y = |v: f64| h - pad + 4.0 - (h - 2.0 * pad) * v / max;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/>\
         <text x=\"2\" y=\"{t}\" class=\"tick\">{} {}</text>",
        esc(title),
        esc(title),
        trim(max),
        esc(unit),
        b = h - pad + 4.0,
        r = w - pad,
        t = pad - 6.0,
    );
    if bars {
        let bw = ((w - 2.0 * pad) / n * 0.7).max(1.0);
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" class=\"bar\"><title>{}: {}</title></rect>",
                    x(i) - bw / 2.0,
                    y(*v),
                    (h - pad + 4.0 - y(*v)).max(0.0),
                    esc(&labels[i]),
                    trim(*v)
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
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" class=\"dot\"><title>{}: {}</title></circle>",
                        x(i),
                        y(*v),
                        esc(&labels[i]),
                        trim(*v)
                    );
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let _ = write!(svg, "<path d=\"{path}\" class=\"line\"/>");
    }
    if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        let _ = write!(
            svg,
            "<text x=\"{pad}\" y=\"{}\" class=\"tick\">{}</text><text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            h - 8.0,
            esc(first),
            w - pad,
            h - 8.0,
            esc(last)
        );
    }
    svg.push_str("</svg></figure>");
    svg
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
         <tr><td>Deployment frequency</td><td>{:.2} per day, {:.1} per week ({} deployments; {})</td><td>{}</td></tr>\
         <tr><td>Lead time for changes</td><td>median {}, p90 {} over {} commits</td><td>{}</td></tr>\
         <tr><td>Change failure rate</td><td>{} ({} of {})</td><td>{}</td></tr>\
         <tr><td>Failed deployment recovery time</td><td>median {}, p90 {} ({} recovered, {} open)</td><td>{}</td></tr>\
         <tr><td>Rework rate</td><td>{} ({} of {})</td><td>{}</td></tr>\
         </tbody></table>",
        df.per_day,
        df.per_week,
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
         .key{{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}}.legend{{font-size:.9em}}</style></head><body>\
         <h1>{title}</h1><p>{subtitle}</p><h2>Baseline</h2>{totals}",
        title = esc(p.title),
        subtitle = esc(&p.subtitle),
        totals = totals_table(&r.totals),
    );
    if let Some(rate) = p.revenue_per_hour {
        let total_secs: i64 = p.findings.iter().map(|f| f.recovery_seconds).sum();
        let h = total_secs as f64 / 3600.0;
        let _ = write!(
            html,
            "<h2>Cost of recovery time</h2><p>{} failures took {:.1} hours to recover in all; at {:.2} revenue per hour that is <strong>{:.2}</strong>.</p>",
            p.findings.len(),
            h,
            rate,
            h * rate
        );
    }
    html.push_str("<h2>Trends</h2>");
    html.push_str(&chart(
        "Deployments per month",
        "deployments",
        &labels,
        &series(&|f| Some(f.deployment_frequency.deployments as f64)),
        true,
    ));
    html.push_str(&chart(
        "Lead time for changes (median)",
        "hours",
        &labels,
        &series(&|f| f.lead_time.commits.median.map(|s| s / 3600.0)),
        false,
    ));
    html.push_str(&chart(
        "Change failure rate",
        "%",
        &labels,
        &series(&|f| f.change_failure_rate.rate.map(|r| r * 100.0)),
        false,
    ));
    html.push_str(&chart(
        "Failed deployment recovery time (median)",
        "hours",
        &labels,
        &series(&|f| f.recovery_time.time.median.map(|s| s / 3600.0)),
        false,
    ));
    html.push_str(&chart("Rework rate", "%", &labels, &series(&|f| f.rework_rate.rate.map(|r| r * 100.0)), false));
    html.push_str("<h2>Value stream</h2>");
    html.push_str(&value_stream(&r.totals));
    let _ = write!(html, "<h2>Failures found in the history ({})</h2>", p.findings.len());
    if !p.findings.is_empty() {
        html.push_str("<table><thead><tr><th>Failed</th><th>Fixed by</th><th>Heuristic</th><th>Recovery</th><th>Evidence</th></tr></thead><tbody>");
        for f in p.findings {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.failed),
                esc(&f.fixed_by),
                f.heuristic,
                hours(Some(f.recovery_seconds as f64)),
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
