using System.Globalization;
using System.Net;
using System.Text;
using BatchScoring.Application.Drift;
using BatchScoring.Scoring.Drift;

namespace BatchScoring.Api;

/// <summary>
/// Draws stored drift reports as HTML with inline SVG histograms (reference vs current share per bin), the statistics,
/// the thresholds and the verdict of every column. No scripts, styles or images from elsewhere: the CLI's
/// <c>drift reports --html</c> file and the status page show the same markup. Every value is HTML-encoded.
/// </summary>
public static class DriftReportHtml
{
    public const string ReferenceColor = "#7a8ca5";

    public const string CurrentColor = "#e07b39";

    /// <summary>Styles the report markup needs; the status page includes them too.</summary>
    public const string Styles = """
        .drift-report{border:1px solid #ccd;border-radius:6px;padding:8px 12px;margin:12px 0}
        .drift-report h3{margin:4px 0}
        .verdict-drift{color:#b00020;font-weight:bold}.verdict-no_drift{color:#1b7a1b;font-weight:bold}.verdict-insufficient_data{color:#8a6d00;font-weight:bold}
        .drift-column{display:inline-block;vertical-align:top;margin:6px 12px 6px 0;max-width:380px}
        .drift-column table{border-collapse:collapse;font-size:12px}.drift-column td,.drift-column th{padding:1px 6px;text-align:left}
        .legend-ref{color:#7a8ca5}.legend-cur{color:#e07b39}
        """;

    /// <summary>A whole self-contained document for <paramref name="reports"/> (newest first, as listed).</summary>
    public static string Document(string title, IReadOnlyList<DriftReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>").Append(E(title)).Append("</title>\n<style>")
            .Append("body{font-family:system-ui,sans-serif;margin:16px;color:#222}").Append(Styles).Append("</style></head>\n<body>\n<h1>").Append(E(title)).Append("</h1>\n");
        if (reports.Count == 0)
        {
            html.Append("<p>No drift reports.</p>\n");
        }

        foreach (var report in reports)
        {
            html.Append(Report(report));
        }

        return html.Append("</body></html>\n").ToString();
    }

    /// <summary>One report as a <c>section</c>: header with window, rows and verdict, then one block per column.</summary>
    public static string Report(DriftReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var html = new StringBuilder();
        html.Append("<section class=\"drift-report\" data-report-id=\"").Append(E(report.Id.ToString())).Append("\">\n<h3>")
            .Append(E($"{report.Model} v{report.Version}")).Append(" — <span class=\"verdict-").Append(E(report.Verdict)).Append("\">")
            .Append(E(VerdictText(report.Verdict))).Append("</span></h3>\n<p>")
            .Append(E(Invariant($"{report.Rows:N0} sampled rows from {report.WindowStart:u} to {report.WindowEnd:u}; audited {report.CreatedAt:u} ({report.Trigger})")))
            .Append(" · <span class=\"legend-ref\">■ reference</span> <span class=\"legend-cur\">■ current</span></p>\n");
        foreach (var column in report.Columns)
        {
            html.Append(Column(column));
        }

        return html.Append("</section>\n").ToString();
    }

    private static string Column(ColumnDrift column)
    {
        var html = new StringBuilder();
        html.Append("<div class=\"drift-column\" data-column=\"").Append(E(column.Name)).Append("\"><h4>").Append(E(column.Name))
            .Append(" <small>").Append(E(column.Kind.ToString().ToLowerInvariant())).Append("</small> ")
            .Append(column.Drifted ? "<span class=\"verdict-drift\">drifted</span>" : "<span class=\"verdict-no_drift\">stable</span>").Append("</h4>\n");
        html.Append(column.Histogram is { } histogram ? Svg(column.Name, histogram) : "<p><em>No histogram stored with this report.</em></p>\n");
        var t = column.Thresholds;
        html.Append("<table>\n<tr><th>statistic</th><th>value</th><th>threshold</th></tr>\n");
        Row(html, "rows (missing)", Invariant($"{column.Rows:N0} ({column.Missing:N0})"), t is null ? "" : Invariant($"≥ {t.MinimumSampleRows:N0}"));
        Row(html, "PSI", F(column.Psi, "0.####"), t is null ? "" : Invariant($"≥ {t.Psi}"));
        if (column.KsStatistic is { } d)
        {
            Row(html, "KS D", F(d, "0.####"), t is null ? "" : Invariant($"≥ {t.KsStatistic}"));
            Row(html, "KS p-value", F(column.KsPValue, "G3"), t is null ? "" : Invariant($"< {t.PValue:G3}"));
        }

        if (column.ChiSquare is { } chi)
        {
            Row(html, "chi-square", F(chi, "0.##"), "");
            Row(html, "chi-square p-value", F(column.ChiSquarePValue, "G3"), t is null ? "" : Invariant($"< {t.PValue:G3}"));
        }

        Row(html, "verdict", column.Drifted ? "drifted" : "stable", column.Reason ?? "");
        return html.Append("</table></div>\n").ToString();
    }

    /// <summary>Paired bars per bin, shares on a 0..max scale; each bar's title carries the exact share.</summary>
    private static string Svg(string name, DriftHistogram histogram)
    {
        const int Height = 170, Top = 10, Bottom = 60, Left = 44, BarWidth = 10, Gap = 8;
        var bins = histogram.Bins.Count;
        var width = Left + bins * (2 * BarWidth + Gap) + Gap;
        var max = Math.Max(histogram.Reference.Concat(histogram.Current).DefaultIfEmpty(0).Max(), 1e-9);
        var plot = Height - Top - Bottom;
        var svg = new StringBuilder();
        svg.Append(Invariant($"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"drift-histogram\" width=\"{width}\" height=\"{Height}\" viewBox=\"0 0 {width} {Height}\" role=\"img\">"))
            .Append("<title>").Append(E($"{name}: reference vs current share per bin")).Append("</title>")
            .Append(Invariant($"<line x1=\"{Left}\" y1=\"{Top + plot}\" x2=\"{width}\" y2=\"{Top + plot}\" stroke=\"#888\"/>"))
            .Append(Invariant($"<text x=\"{Left - 4}\" y=\"{Top + 8}\" font-size=\"9\" text-anchor=\"end\">{max * 100:0.#}%</text>"))
            .Append(Invariant($"<text x=\"{Left - 4}\" y=\"{Top + plot}\" font-size=\"9\" text-anchor=\"end\">0</text>"));
        for (var i = 0; i < bins; i++)
        {
            var x = Left + Gap + i * (2 * BarWidth + Gap);
            Bar(svg, x, Share(histogram.Reference, i), "reference", histogram.Bins[i]);
            Bar(svg, x + BarWidth, Share(histogram.Current, i), "current", histogram.Bins[i]);
            // Slanted so range labels of neighbouring bins do not overlap.
            svg.Append(Invariant($"<text x=\"{x + BarWidth}\" y=\"{Top + plot + 10}\" font-size=\"8\" text-anchor=\"end\" transform=\"rotate(-40 {x + BarWidth} {Top + plot + 10})\">"))
                .Append(E(Shorten(histogram.Bins[i]))).Append("<title>").Append(E(histogram.Bins[i])).Append("</title></text>");
        }

        return svg.Append("</svg>\n").ToString();

        void Bar(StringBuilder s, int x, double share, string series, string bin)
        {
            var h = share / max * plot;
            s.Append(Invariant($"<rect class=\"bar-{series}\" x=\"{x}\" y=\"{Top + plot - h:0.##}\" width=\"{BarWidth}\" height=\"{h:0.##}\" fill=\"{(series == "reference" ? ReferenceColor : CurrentColor)}\" data-share=\"{share:R}\">"))
                .Append("<title>").Append(E(Invariant($"{bin}: {series} {share * 100:0.##}%"))).Append("</title></rect>");
        }
    }

    private static double Share(IReadOnlyList<double> shares, int index) => index < shares.Count ? shares[index] : 0;

    private static string Shorten(string bin) => bin.Length <= 18 ? bin : bin[..17] + "…";

    private static void Row(StringBuilder html, string label, string value, string threshold) =>
        html.Append("<tr><td>").Append(E(label)).Append("</td><td>").Append(E(value)).Append("</td><td>").Append(E(threshold)).Append("</td></tr>\n");

    private static string VerdictText(string verdict) => verdict switch
    {
        DriftVerdicts.Drift => "drift",
        DriftVerdicts.NoDrift => "no drift",
        DriftVerdicts.InsufficientData => "insufficient data",
        _ => verdict,
    };

    private static string F(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture) ?? "";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
