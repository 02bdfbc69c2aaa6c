using ScottPlot;

namespace BertSharp.Reporting;

/// <summary>Draws <see cref="PlotSpec"/> figures from logged rows into PNG files (ScottPlot 5, SkiaSharp).</summary>
public static class PlotRenderer
{
    public const int Width = 900;
    public const int Height = 560;

    // ScottPlot's default font (Segoe UI) is missing on most Linux machines, where it falls back to a serif face.
    static readonly Lazy<string?> SansFont = new(() =>
    {
        try
        {
            var installed = SkiaSharp.SKFontManager.Default.GetFontFamilies().ToHashSet(StringComparer.OrdinalIgnoreCase);
            return new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica", "Segoe UI" }.FirstOrDefault(installed.Contains);
        }
        catch (Exception)
        {
            return null;
        }
    });

    // Above this many points a series is drawn as a plain line; below it each point gets a marker.
    const int MarkerLimit = 60;

    /// <summary>
    /// Draws <paramref name="spec"/> from <paramref name="rows"/> into <paramref name="path"/>, atomically (a
    /// temporary file in the same folder, then a rename). Returns false, writing nothing, when no series has a point.
    /// </summary>
    public static bool Render(PlotSpec spec, IEnumerable<MetricRow> rows, string path)
    {
        var plot = new Plot();
        int drawn = 0;
        foreach (var (column, label) in spec.Series)
        {
            var xs = new List<double>();
            var ys = new List<double>();
            foreach (var row in rows)
            {
                if (row.Get(spec.XColumn) is double x && row.Get(column) is double y && double.IsFinite(x) && double.IsFinite(y))
                {
                    xs.Add(x);
                    ys.Add(y);
                }
            }
            if (xs.Count == 0) continue;
            var scatter = plot.Add.ScatterLine(xs.ToArray(), ys.ToArray());
            scatter.LegendText = label;
            scatter.LineWidth = 1.5f;
            scatter.MarkerSize = xs.Count <= MarkerLimit ? 6 : 0;
            drawn++;
        }
        if (drawn == 0) return false;

        if (SansFont.Value is string font) plot.Font.Set(font);
        plot.Title(spec.Title);
        plot.XLabel(spec.XLabel ?? spec.XColumn);
        plot.YLabel(spec.YLabel);
        plot.ShowLegend(Edge.Right);   // beside the data, so it never hides a curve
        byte[] png = plot.GetImageBytes(Width, Height, ImageFormat.Png);

        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        File.WriteAllBytes(tmp, png);
        File.Move(tmp, path, overwrite: true);
        return true;
    }
}
