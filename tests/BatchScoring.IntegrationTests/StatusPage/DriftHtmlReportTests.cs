using System.Globalization;
using System.Net.Http.Json;
using System.Xml.Linq;
using BatchScoring.Api;
using BatchScoring.Application.Drift;
using BatchScoring.Cli.Hosting;
using BatchScoring.IntegrationTests.Infrastructure;
using BatchScoring.IntegrationTests.Jobs;
using BatchScoring.Scoring.Drift;

namespace BatchScoring.IntegrationTests.StatusPage;

/// <summary><c>drift reports --html</c>: one self-contained file whose charts and numbers are those of the API's report.</summary>
public sealed class DriftHtmlReportTests(ServerFixture servers)
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_html_report_draws_every_column_with_the_apis_shares_statistics_thresholds_and_verdict()
    {
        await using var host = await ServiceTestHost.StartAsync(servers, "drift-html", ServiceRoles.All, Ct);
        await DriftScenario.RegisterAndProfileAsync(host, Ct);
        var audited = await DriftScenario.ScoreShiftedAndAuditAsync(host, Ct);
        var profile = (await host.Client.GetFromJsonAsync<ModelProfile>("/api/models/churn/profile", ServiceTestHost.Json, Ct))!;

        var file = Path.Combine(host.WorkDir, "report.html");
        var (exit, stdout, stderr) = await CliProcess.RunAsync(Ct, "drift", "reports", "--name", "churn", "--limit", "1", "--html", file, "--api", host.Client.BaseAddress!.ToString());
        Assert.True(exit == 0, stdout + stderr);
        var listed = (await host.Client.GetFromJsonAsync<List<DriftReport>>("/api/models/churn/drift?limit=1", ServiceTestHost.Json, Ct))!;
        var report = Assert.Single(listed);
        Assert.Equal(audited.Id, report.Id);

        var html = await File.ReadAllTextAsync(file, Ct);
        Assert.DoesNotContain("src=", html, StringComparison.OrdinalIgnoreCase); // nothing loaded from elsewhere
        Assert.DoesNotContain("href=", html, StringComparison.OrdinalIgnoreCase);
        var document = Parse(html);
        var section = Assert.Single(document.Descendants("section"));
        Assert.Equal(report.Id.ToString(), section.Attribute("data-report-id")!.Value);
        Assert.Contains("drift", section.Element("h3")!.Value, StringComparison.Ordinal);

        var expected = profile.Features.Concat(profile.Predictions).Select(c => c.Name).ToArray();
        var blocks = section.Elements("div").Where(d => d.Attribute("class")?.Value == "drift-column").ToList();
        Assert.Equal(expected, blocks.Select(b => b.Attribute("data-column")!.Value));
        foreach (var block in blocks)
        {
            var column = Assert.Single(report.Columns, c => c.Name == block.Attribute("data-column")!.Value);
            var reference = profile.Features.Concat(profile.Predictions).Single(p => p.Name == column.Name);
            var svg = Assert.Single(block.Descendants(Svg + "svg"));
            var histogram = column.Histogram!;
            Assert.Equal(reference.Proportions, histogram.Reference);
            Assert.Equal(reference.Proportions.Length, histogram.Current.Count);
            Assert.Equal(1.0, histogram.Current.Sum(), 9);
            Assert.Equal(histogram.Reference, Shares(svg, "bar-reference"));
            Assert.Equal(histogram.Current, Shares(svg, "bar-current"));

            var cells = block.Descendants("tr").Skip(1).ToDictionary(r => r.Elements("td").First().Value, r => r.Elements("td").Skip(1).Select(td => td.Value).ToArray());
            Assert.Equal([column.Psi.ToString("0.####", CultureInfo.InvariantCulture), "≥ 0.2"], cells["PSI"]);
            Assert.Equal(column.KsStatistic!.Value.ToString("0.####", CultureInfo.InvariantCulture), cells["KS D"][0]);
            Assert.Equal("≥ " + column.Thresholds!.KsStatistic.ToString(CultureInfo.InvariantCulture), cells["KS D"][1]);
            Assert.Equal(column.KsPValue!.Value.ToString("G3", CultureInfo.InvariantCulture), cells["KS p-value"][0]);
            Assert.Equal(column.ChiSquarePValue!.Value.ToString("G3", CultureInfo.InvariantCulture), cells["chi-square p-value"][0]);
            Assert.Equal(column.Drifted ? "drifted" : "stable", cells["verdict"][0]);
            Assert.Equal(column.Reason ?? "", cells["verdict"][1]);
        }

        Assert.True(report.Columns.Single(c => c.Name == "f_000").Drifted);
    }

    [Fact]
    public void Every_value_is_html_encoded()
    {
        const string Hostile = "<script>alert('x')</script>&\"";
        var column = new ColumnDrift(Hostile, ProfileColumnKind.Categorical, 10, 0, 0.5, null, null, 3, 0.001, true, Hostile,
            new DriftHistogram([Hostile, "other"], [0.5, 0.5], [0.9, 0.1]), DriftThresholds.Default);
        var report = new DriftReport(Guid.NewGuid(), Hostile, 1, Hostile, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 10, true, false, false, [column], DateTimeOffset.UnixEpoch, Hostile);

        var html = DriftReportHtml.Document(Hostile, [report]);

        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("alert('x')", html, StringComparison.Ordinal);
        var document = Parse(html);
        Assert.Equal(Hostile, document.Descendants("div").Single(d => d.Attribute("data-column") is not null).Attribute("data-column")!.Value);
        Assert.Contains(document.Descendants(Svg + "text"), t => t.Value.StartsWith("<script>", StringComparison.Ordinal));
    }

    /// <summary>The markup is well-formed XML (XHTML syntax) once the HTML5 doctype is set aside.</summary>
    internal static XDocument Parse(string html)
    {
        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);
        var document = XDocument.Parse(html["<!DOCTYPE html>".Length..]);
        Assert.Equal("html", document.Root!.Name.LocalName);
        return document;
    }

    private static double[] Shares(XElement svg, string series) =>
        [.. svg.Descendants(Svg + "rect").Where(r => r.Attribute("class")!.Value == series).Select(r => double.Parse(r.Attribute("data-share")!.Value, CultureInfo.InvariantCulture))];
}
