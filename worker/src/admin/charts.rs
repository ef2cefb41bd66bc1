//! Small charts for the overview, drawn on the server as inline SVG: no script, no library, no
//! network (the page works on a machine without internet).

use std::fmt::Write;

/// Width and height of a chart, in SVG units (it scales with the page).
const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 60.0;

/// Escapes `text` for an XML attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of `values` (oldest first), scaled to its largest value, labelled for screen
/// readers with `label` and the latest and largest values.
pub fn sparkline(values: &[f64], label: &str) -> String {
    // One value (the first interval since start) is a level line.
    let single;
    let values = if let [only] = values {
        single = [*only, *only];
        &single[..]
    } else {
        values
    };
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let latest = values.last().copied().unwrap_or(0.0);
    let description = format!(
        "{label}: latest {}, highest {} (last hour)",
        round(latest),
        round(max)
    );
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" role="img" aria-label="{}"><title>{}</title>"#,
        escape(&description),
        escape(&description)
    );
    if values.len() >= 2 {
        #[allow(clippy::cast_precision_loss)] // At most a few hundred points.
        let step = WIDTH / (values.len() - 1) as f64;
        let scale = if max > 0.0 { (HEIGHT - 4.0) / max } else { 0.0 };
        let mut points = String::new();
        for (i, v) in values.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let x = i as f64 * step;
            let y = HEIGHT - 2.0 - v * scale;
            let _ = write!(points, "{x:.1},{y:.1} ");
        }
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke" points="{}"/>"#,
            points.trim_end()
        );
    } else {
        let _ = write!(
            svg,
            r#"<text x="4" y="{}" font-size="12">collecting — a point every 10 s</text>"#,
            HEIGHT / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `value` for reading: whole when large, two decimals when small.
pub fn round(value: f64) -> String {
    if value.abs() >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_labelled_and_escaped() {
        let svg = sparkline(&[0.0, 2.0, 1.0], "events <per> minute");
        assert!(svg.contains("events &lt;per&gt; minute: latest 1, highest 2"));
        assert!(svg.contains("<polyline"));
        assert!(!svg.contains("<per>"));
    }

    #[test]
    fn too_few_points_say_so() {
        assert!(sparkline(&[], "x").contains("collecting"));
        assert!(sparkline(&[3.0], "x").contains("<polyline"));
    }
}
