using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;

namespace BertSharp.Cli.Commands;

public static class InfoCommand
{
    public static Command Build(CommandContext ctx)
    {
        var dir = new Argument<string>("MODEL_DIR") { Description = "A model folder (config.json, vocab.txt, model.safetensors or pytorch_model.bin), or a Hub id: name, org/name or org/name@revision" };
        var json = new Option<bool>("--json") { Description = "Write one JSON document to stdout" };
        var cmd = new Command("info", "Show a model folder's configuration, parameter counts by part, and files") { dir, json };
        cmd.SetAction(r => Run(ctx, ModelArgument.Resolve(ctx, r.GetRequiredValue(dir)), r.GetValue(json), Cli.PrecisionOf(r), r.GetValue(Cli.Device)!));
        return cmd;
    }

    static int Run(CommandContext ctx, string dir, bool json, string precision, string device)
    {
        var (model, report) = ModelFolder.Load(dir, compute: Cli.Compute(precision), device: device);
        using var _ = model;
        var parts = ModelSummary.CountByPart(model);
        long total = parts.Sum(p => p.Count);
        // A Hub snapshot holds symlinks to its blobs: the size shown is the target's.
        var files = new DirectoryInfo(dir).GetFiles().OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => (f.Name, (f.ResolveLinkTarget(true) as FileInfo ?? f).Length)).ToList();
        var c = model.Config;
        if (json)
        {
            var doc = new JsonObject
            {
                ["model_dir"] = Path.GetFullPath(dir),
                ["architecture"] = model.Architecture,
                ["config"] = c.ToJson(),
                ["parameters"] = new JsonObject(parts.Select(p => KeyValuePair.Create(p.Part, (JsonNode?)p.Count))),
                ["total_parameters"] = total,
                ["files"] = new JsonObject(files.Select(f => KeyValuePair.Create(f.Name, (JsonNode?)f.Length))),
                ["load_warnings"] = new JsonArray(report.Messages().Select(m => (JsonNode?)m).ToArray()),
            };
            ctx.Out.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        ctx.Out.WriteLine($"model folder   {Path.GetFullPath(dir)}");
        ctx.Out.WriteLine($"architecture   {model.Architecture}");
        ctx.Out.WriteLine($"layers {c.NumHiddenLayers}, hidden {c.HiddenSize}, heads {c.NumAttentionHeads} (head dim {c.HeadDim}), intermediate {c.IntermediateSize}, act {c.HiddenAct}");
        ctx.Out.WriteLine($"vocab {c.VocabSize}, max positions {c.MaxPositionEmbeddings}, token types {c.TypeVocabSize}, layer-norm eps {c.LayerNormEps:g}, dropout {c.HiddenDropoutProb:g}/{c.AttentionProbsDropoutProb:g}");
        if (Tasks.TaskFamily.TryOf(c) is { HasLabels: true })
            ctx.Out.WriteLine($"labels ({c.NumLabels})    {string.Join(", ", c.Labels)}{(c.ProblemType != null ? $"  [{c.ProblemType}]" : "")}");
        ctx.Out.WriteLine();
        ctx.Out.WriteLine("parameters");
        foreach (var (part, count) in parts)
            ctx.Out.WriteLine($"  {part,-28}{count,14:N0}");
        ctx.Out.WriteLine($"  {"total",-28}{total,14:N0}");
        ctx.Out.WriteLine();
        ctx.Out.WriteLine("files");
        foreach (var (name, len) in files)
            ctx.Out.WriteLine($"  {name,-28}{len,14:N0} bytes");
        foreach (var m in report.Messages()) ctx.Err.WriteLine($"warning: {m}");
        return 0;
    }
}
