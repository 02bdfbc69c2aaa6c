using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Inference;

namespace BertSharp.Cli.Commands;

public static class FillMaskCommand
{
    public static Command Build(CommandContext ctx)
    {
        var dir = new Argument<string>("MODEL_DIR") { Description = "A model folder with a masked-LM head (pre-trained), or a Hub id: name, org/name or org/name@revision" };
        var text = new Argument<string>("TEXT") { Description = "Text with one or more [MASK] tokens" };
        var pair = new Option<string?>("--pair") { Description = "Second segment (sentence B), which may also hold [MASK]" };
        var topK = new Option<int>("--top-k") { Description = "Predictions to show per [MASK]", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Write one JSON document to stdout" };
        var cmd = new Command("fill-mask", "Predict the tokens behind [MASK] with a pre-trained model") { dir, text, pair, topK, json };
        cmd.SetAction(r => Run(ctx, new FillMask(ModelArgument.Resolve(ctx, r.GetRequiredValue(dir)), new LoadOptions { Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)! }),
            r.GetRequiredValue(text), r.GetValue(pair), r.GetValue(topK), r.GetValue(json)));
        return cmd;
    }

    static int Run(CommandContext ctx, FillMask fill, string text, string? pair, int topK, bool json)
    {
        using var _ = fill;
        foreach (var m in fill.LoadReport.Messages()) ctx.Err.WriteLine($"warning: {m}");
        var results = fill.Predict(text, pair, topK);
        if (json)
        {
            var doc = new JsonObject
            {
                ["text"] = text,
                ["pair"] = pair,
                ["masks"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
                {
                    ["position"] = r.Position,
                    ["predictions"] = new JsonArray(r.Predictions.Select(p => (JsonNode)new JsonObject
                    {
                        ["token"] = p.Token, ["id"] = p.Id, ["probability"] = Math.Round(p.Probability, 6),
                    }).ToArray()),
                }).ToArray()),
            };
            ctx.Out.WriteLine(doc.ToJsonString());
            return 0;
        }
        foreach (var r in results)
        {
            ctx.Out.WriteLine($"[MASK] at position {r.Position}:");
            foreach (var p in r.Predictions)
                ctx.Out.WriteLine($"  {p.Token,-20} id {p.Id,-7} p={p.Probability:F4}");
        }
        return 0;
    }
}
