using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Cli.Commands;

/// <summary>
/// The options of a training command, recorded in args.json. On --resume, options not given on the command
/// line take the values the run was started with, so `--resume --output DIR` alone continues a run exactly.
/// </summary>
public sealed class RunOptions
{
    public List<Option> Options { get; } = new();

    public Option<T> Add<T>(Option<T> option) { Options.Add(option); return option; }

    public static JsonObject? LoadSaved(string argsFile)
    {
        if (!File.Exists(argsFile)) throw new BertSharpException($"{argsFile}: not found; --resume needs the run folder of an earlier run");
        try { return JsonNode.Parse(File.ReadAllText(argsFile)) as JsonObject; }
        catch (JsonException e) { throw new BertSharpException($"{argsFile}: invalid JSON: {e.Message.Split('\n')[0]}"); }
    }

    public Values Resolve(ParseResult r, JsonObject? saved) => new(this, r, saved);

    public sealed class Values(RunOptions owner, ParseResult r, JsonObject? saved)
    {
        public T Get<T>(Option<T> option)
        {
            if (r.GetResult(option) is { Implicit: false } || saved is null || !saved.TryGetPropertyValue(option.Name, out var node))
                return r.GetValue(option)!;
            return node is null ? default! : node.Deserialize<T>()!;
        }

        public T? Get<T>(string name) => saved != null && saved.TryGetPropertyValue(name, out var n) && n != null ? n.Deserialize<T>() : default;

        public Dictionary<string, object?> ToDictionary()
        {
            var d = new Dictionary<string, object?>();
            foreach (var opt in owner.Options)
            {
                var m = typeof(Values).GetMethods().First(m => m.Name == nameof(Get) && m.GetParameters()[0].ParameterType.IsGenericType);
                d[opt.Name] = m.MakeGenericMethod(opt.ValueType).Invoke(this, new object[] { opt });
            }
            return d;
        }
    }
}
