using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Tasks;

/// <summary>The JSON files of runs and evaluations: JSONL rows and metrics objects.</summary>
public static class JsonLines
{
    public static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Metric values rounded to 6 decimals; a value that is not finite becomes null.</summary>
    public static JsonObject Metrics(IReadOnlyDictionary<string, double> metrics) =>
        new(metrics.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)(double.IsFinite(kv.Value) ? Math.Round(kv.Value, 6) : null))));

    /// <summary>Writes one JSON object per line (atomically).</summary>
    public static void Write(string path, IEnumerable<JsonObject> rows) =>
        AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true);
            foreach (var r in rows) { w.Write(r.ToJsonString(Compact)); w.Write('\n'); }
        });
}
