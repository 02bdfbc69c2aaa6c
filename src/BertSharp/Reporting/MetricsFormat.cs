using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace BertSharp.Reporting;

/// <summary>The metrics.jsonl line format and the metrics.csv cell format.</summary>
internal static class MetricsFormat
{
    // Millisecond ISO 8601 in UTC, e.g. 2025-01-31T12:34:56.789Z.
    const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public static string FormatTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    /// <summary>One JSON object, no newline: {"step":..,"split":..,"time":..,values...}.
    /// Non-finite values are written as the strings "NaN", "Infinity", "-Infinity" (JSON has no literal for them).</summary>
    public static string ToJsonLine(MetricRow row)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("step", row.Step);
            w.WriteString("split", row.Split);
            w.WriteString("time", FormatTime(row.Time));
            foreach (var (name, value) in row.Values)
            {
                if (double.IsFinite(value)) w.WriteNumber(name, value);
                else w.WriteString(name, NonFinite(value));
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Parses a line written by <see cref="ToJsonLine"/>; null when the line is not a complete row
    /// (e.g. the half-written last line of a crashed run).</summary>
    public static MetricRow? ParseJsonLine(string line)
    {
        if (string.IsNullOrWhiteSpace(line)) return null;
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("step", out var stepEl) || !stepEl.TryGetInt64(out long step)
                || !root.TryGetProperty("split", out var splitEl) || splitEl.ValueKind != JsonValueKind.String)
                return null;
            var time = root.TryGetProperty("time", out var timeEl) && timeEl.ValueKind == JsonValueKind.String
                && DateTimeOffset.TryParse(timeEl.GetString(), CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t : DateTimeOffset.MinValue;
            var values = new Dictionary<string, double>();
            foreach (var p in root.EnumerateObject())
            {
                if (p.Name is "step" or "split" or "time") continue;
                double? v = p.Value.ValueKind switch
                {
                    JsonValueKind.Number => p.Value.GetDouble(),
                    JsonValueKind.String => ParseNonFinite(p.Value.GetString()),
                    _ => null,
                };
                if (v is double d) values[p.Name] = d;
            }
            return new MetricRow(step, splitEl.GetString()!, time, values);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A csv cell for a value: shortest round-trip form, invariant culture; NaN, inf, -inf.</summary>
    public static string CsvNumber(double value) =>
        double.IsNaN(value) ? "NaN"
        : double.IsPositiveInfinity(value) ? "inf"
        : double.IsNegativeInfinity(value) ? "-inf"
        : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>RFC 4180 quoting where needed.</summary>
    public static string CsvText(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") < 0 ? text : "\"" + text.Replace("\"", "\"\"") + "\"";

    public static string CsvHeader(IReadOnlyList<string> valueColumns) =>
        string.Join(',', MetricRow.FixedColumns.Concat(valueColumns).Select(CsvText));

    public static string CsvLine(MetricRow row, IReadOnlyList<string> valueColumns)
    {
        var sb = new StringBuilder(64 + 16 * valueColumns.Count);
        sb.Append(row.Step.ToString(CultureInfo.InvariantCulture)).Append(',')
          .Append(CsvText(row.Split)).Append(',')
          .Append(FormatTime(row.Time));
        foreach (string c in valueColumns)
        {
            sb.Append(',');
            if (row.Values.TryGetValue(c, out double v)) sb.Append(CsvNumber(v));
        }
        return sb.ToString();
    }

    static string NonFinite(double v) => double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";

    static double? ParseNonFinite(string? s) => s switch
    {
        "NaN" => double.NaN,
        "Infinity" => double.PositiveInfinity,
        "-Infinity" => double.NegativeInfinity,
        _ => null,
    };
}
