using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Tokenization;

namespace BertSharp.Cli.Commands;

public static class TokenizeCommand
{
    public static Command Build(CommandContext ctx)
    {
        var dir = new Argument<string>("MODEL_DIR") { Description = "A model folder (vocab.txt, tokenizer_config.json), or a Hub id: name, org/name or org/name@revision" };
        var text = new Argument<string?>("TEXT") { Description = "Text to tokenize; without it, JSONL lines {\"text\": …, \"pair\": …} are read from --file or stdin", Arity = ArgumentArity.ZeroOrOne };
        var pair = new Option<string?>("--pair") { Description = "Second segment (sentence B)" };
        var file = new Option<string?>("--file") { Description = "Read JSONL inputs from this file (- for stdin); one JSON line is written per input, in order; empty lines are skipped. " + TextLineReader.InputRule };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncate to this many tokens including [CLS]/[SEP] (default: the tokenizer's model_max_length)" };
        var json = new Option<bool>("--json") { Description = "Write JSON to stdout" };
        var cmd = new Command("tokenize", "Show WordPiece tokens, input_ids and token_type_ids for a text or a pair") { dir, text, pair, file, maxLength, json };
        cmd.SetAction(r => Run(ctx, ModelArgument.Resolve(ctx, r.GetRequiredValue(dir)), r.GetValue(text), r.GetValue(pair), r.GetValue(file), r.GetValue(maxLength), r.GetValue(json)));
        return cmd;
    }

    static JsonObject ToJson(BertEncoding e) => new()
    {
        ["tokens"] = new JsonArray(e.Tokens.Select(t => (JsonNode?)t).ToArray()),
        ["input_ids"] = new JsonArray(e.InputIds.Select(t => (JsonNode?)t).ToArray()),
        ["token_type_ids"] = new JsonArray(e.TokenTypeIds.Select(t => (JsonNode?)t).ToArray()),
    };

    static int Run(CommandContext ctx, string dir, string? text, string? pair, string? file, int? maxLength, bool json)
    {
        Checkpoints.ModelFolder.RequireFolder(dir);
        var tok = BertTokenizer.FromFolder(dir);
        int max = maxLength ?? tok.DefaultMaxLength;
        if (text != null)
        {
            if (file != null) throw new BertSharpException("give either TEXT or --file, not both");
            var e = tok.Encode(text, pair, max);
            if (json) ctx.Out.WriteLine(ToJson(e).ToJsonString());
            else
            {
                ctx.Out.WriteLine($"tokens          {string.Join(' ', e.Tokens)}");
                ctx.Out.WriteLine($"input_ids       {string.Join(' ', e.InputIds)}");
                ctx.Out.WriteLine($"token_type_ids  {string.Join(' ', e.TokenTypeIds)}");
            }
            return 0;
        }
        if (pair != null) throw new BertSharpException("--pair needs TEXT; in JSONL input give \"pair\" in each line");
        // The one text-input rule (TextLineReader.InputRule), as for every other text file BertSharp reads.
        using var reader = file is null or "-"
            ? new TextLineReader(Console.OpenStandardInput(), "stdin")
            : TextLineReader.Open(file);
        while (reader.TryReadLine(out var line))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            var (a, b) = ParseLine(line, reader.SourceName, reader.LineNumber);
            ctx.Out.WriteLine(ToJson(tok.Encode(a, b, max)).ToJsonString());
        }
        return 0;
    }

    static (string Text, string? Pair) ParseLine(string line, string source, int lineNo)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(line); }
        catch (JsonException e) { throw new BertSharpException($"{source}:{lineNo}: not a JSON object: {e.Message.Split('\n')[0]}"); }
        if (node is not JsonObject o) throw new BertSharpException($"{source}:{lineNo}: expected a JSON object like {{\"text\": \"…\"}}");
        if (o["text"] is not JsonValue tv || tv.GetValueKind() != JsonValueKind.String)
            throw new BertSharpException($"{source}:{lineNo}: missing string field \"text\"");
        string? pair = null;
        if (o["pair"] is JsonNode pn)
        {
            if (pn is not JsonValue pv || pv.GetValueKind() != JsonValueKind.String)
                throw new BertSharpException($"{source}:{lineNo}: field \"pair\" must be a string");
            pair = pv.GetValue<string>();
        }
        return (tv.GetValue<string>(), pair);
    }
}
