using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Training;

/// <summary>
/// args.json: the options of a run, one key each, under the names the `bert` command gives them ("--batch-size"),
/// so a run folder says how to start the same run again. A run writes every value it used, defaults resolved; a
/// resumed run takes the saved value of every option its caller left at its default.
/// </summary>
public sealed class RunArgs<TOptions>
{
    readonly List<Entry> entries = new();

    sealed record Entry(string Key, Func<TOptions, object?> Get, Func<TOptions, TOptions, bool> SameValue, Func<TOptions, JsonNode?, TOptions> Set)
    {
        /// <summary>The value of a run recorded before the option existed (null: the default stands).</summary>
        public JsonNode? Absent { get; init; }
    }

    /// <summary>Adds an option: its key, how to read it from the options, and how to set it. <paramref name="absent"/>:
    /// what a run recorded before the option existed did, when that is not the option's default.</summary>
    public RunArgs<TOptions> Add<TValue>(string key, Func<TOptions, TValue> get, Func<TOptions, TValue, TOptions> set, JsonNode? absent = null)
    {
        // null saved for an option that cannot be null (an older run left it unresolved): the default stands
        bool nullable = !typeof(TValue).IsValueType || Nullable.GetUnderlyingType(typeof(TValue)) != null;
        entries.Add(new Entry(key, o => get(o), (a, b) => EqualityComparer<TValue>.Default.Equals(get(a), get(b)),
            (o, node) => node is null ? (nullable ? set(o, default!) : o) : set(o, node.Deserialize<TValue>()!))
        { Absent = absent });
        return this;
    }

    /// <summary>Adds an option whose args.json value is JSON of more than one shape (a name, or the values it stood for).</summary>
    public RunArgs<TOptions> AddJson(string key, Func<TOptions, JsonNode?> get, Func<TOptions, JsonNode?, TOptions> set)
    {
        entries.Add(new Entry(key, o => get(o), (a, b) => JsonNode.DeepEquals(get(a), get(b)), set));
        return this;
    }

    /// <summary>The args.json object of <paramref name="options"/>, keys in the order they were added.</summary>
    public JsonObject ToJson(TOptions options)
    {
        var o = new JsonObject();
        foreach (var e in entries) o[e.Key] = JsonSerializer.SerializeToNode(e.Get(options));
        return o;
    }

    /// <summary><paramref name="given"/> with each option it leaves at its default (the value in
    /// <paramref name="defaults"/>) taken from <paramref name="saved"/>, where saved holds it.</summary>
    public TOptions Merge(TOptions given, TOptions defaults, JsonObject saved, string source)
    {
        var merged = given;
        foreach (var e in entries)
        {
            if (!e.SameValue(given, defaults)) continue;
            if (!saved.TryGetPropertyValue(e.Key, out var node))
            {
                if (e.Absent is null) continue;
                node = e.Absent;
            }
            try { merged = e.Set(merged, node); }
            catch (Exception x) when (x is JsonException or InvalidOperationException or FormatException)
            {
                throw new BertSharpException($"{source}: \"{e.Key}\" has the value {node?.ToJsonString() ?? "null"}, which is not what it holds: {x.Message.Split('\n')[0]}");
            }
        }
        return merged;
    }
}
