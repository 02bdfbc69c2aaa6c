using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Tasks.Embedding;

namespace BertSharp.Cli.Commands;

/// <summary>`bert embed MODEL TEXT...|--input FILE`: sentence embeddings as JSON lines or a .npy matrix.</summary>
public static class EmbedCommand
{
    public static Command Build(CommandContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "A model folder — sentence-transformers (modules.json, pooling), a `bert finetune embed` run, or any BERT folder (mean pooling) — or a Hub id: name, org/name or org/name@revision (fetched into the Hugging Face cache)" };
        var texts = new Argument<string[]>("TEXT") { Description = "Texts to embed, one per argument; without any, lines are read from --input or stdin", Arity = ArgumentArity.ZeroOrMore };
        var input = new Option<string?>("--input") { Description = "Read texts from this file (- for stdin), one per line (an empty line is an empty text)" };
        var output = new Option<string?>("--output", "-o") { Description = "Write to this file instead of stdout: NAME.npy writes a float32 matrix [texts, dimensions] (numpy.load reads it), any other name JSON lines" };
        var batch = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var maxSeq = new Option<int?>("--max-seq-length") { Description = "Tokens per text (default: the folder's sentence_bert_config.json max_seq_length, else its tokenizer's)" };
        var chunk = new Option<bool>("--chunk") { Description = "Embed a text longer than the maximum length in overlapping windows and average them, instead of cutting it" };
        var overlap = new Option<int?>("--chunk-overlap") { Description = "Word pieces two windows share (default: a quarter of a window)" };
        var cmd = new Command("embed", "Sentence embeddings of texts: one JSON line per text ({\"index\", \"embedding\"}), or a .npy matrix")
        { model, texts, input, output, batch, maxSeq, chunk, overlap };
        cmd.WithDetails("Follows the folder's sentence-transformers files: modules.json (Transformer, Pooling, Normalize), 1_Pooling/config.json " +
            "(cls, mean, max, mean_sqrt_len), sentence_bert_config.json (max_seq_length). Texts longer than the maximum length are cut " +
            "(their JSON line says \"truncated\": true and the count is reported), or embedded whole with --chunk.\n" + TextLineReader.InputRule);
        cmd.SetAction(r =>
        {
            var args = r.GetValue(texts) ?? [];
            string? file = r.GetValue(input), outPath = r.GetValue(output);
            if (args.Length > 0 && file != null) throw new BertSharpException("give either TEXT arguments or --input, not both");
            var lines = args.Length > 0 ? args.ToList() : ReadLines(file);
            if (lines.Count == 0) throw new BertSharpException($"{(file is null or "-" ? "stdin" : file)}: no texts (an empty file)");
            using var encoder = SentenceEncoder.Load(ModelArgument.Resolve(ctx, r.GetRequiredValue(model)), new SentenceEncoderOptions
            {
                BatchSize = r.GetValue(batch), MaxSeqLength = r.GetValue(maxSeq), Chunk = r.GetValue(chunk), ChunkOverlap = r.GetValue(overlap),
                Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)!,
            });
            foreach (var note in encoder.Notes) ctx.Err.WriteLine($"note: {note}");
            var clock = Stopwatch.StartNew();
            var embeddings = encoder.EncodeWithDetails(lines);
            double seconds = clock.Elapsed.TotalSeconds;
            if (outPath is not null && outPath.EndsWith(".npy", StringComparison.OrdinalIgnoreCase))
                NpyFile.Write(outPath, embeddings.Select(e => e.Vector).ToList(), encoder.Dimension);
            else
            {
                using var writer = outPath is null ? null : new StreamWriter(outPath, false, new System.Text.UTF8Encoding(false));
                var sink = writer ?? ctx.Out;
                for (int i = 0; i < embeddings.Count; i++) sink.WriteLine(ToJson(i, embeddings[i]).ToJsonString());
                sink.Flush();
            }
            int cut = embeddings.Count(e => e.Truncated), chunked = embeddings.Count(e => e.Windows > 1);
            ctx.Err.WriteLine($"embedded {lines.Count} texts ({encoder.Dimension} dimensions, {SentenceEmbeddingSettings.Describe(encoder.Settings.Pooling)} pooling" +
                $"{(encoder.Normalized ? ", normalized" : "")}) in {seconds:F2} s ({lines.Count / Math.Max(seconds, 1e-9):F0} texts/s){(outPath is null ? "" : $"; wrote {outPath}")}");
            if (cut > 0) ctx.Err.WriteLine($"note: {cut} texts longer than {encoder.MaxSeqLength} tokens were cut there (--chunk embeds them whole)");
            if (chunked > 0) ctx.Err.WriteLine($"note: {chunked} texts longer than {encoder.MaxSeqLength} tokens were embedded in {embeddings.Sum(e => e.Windows > 1 ? e.Windows : 0)} windows");
            return 0;
        });
        return cmd;
    }

    static List<string> ReadLines(string? file)
    {
        using var reader = file is null or "-" ? new TextLineReader(Console.OpenStandardInput(), "stdin") : TextLineReader.Open(file);
        var lines = new List<string>();
        while (reader.TryReadLine(out var line)) lines.Add(line);
        return lines;
    }

    /// <summary>{"index", "embedding"}, with "tokens" and "truncated" when the text was cut, "windows" when chunked.</summary>
    public static JsonObject ToJson(int? index, EmbeddingPrediction e, string? text = null)
    {
        var o = new JsonObject();
        if (index is int i) o["index"] = i;
        if (text is not null) o["text"] = text;
        o["embedding"] = new JsonArray(e.Vector.Select(v => (JsonNode?)v).ToArray());
        if (e.Truncated) { o["tokens"] = e.Tokens; o["truncated"] = true; }
        if (e.Windows > 1) { o["tokens"] = e.Tokens; o["windows"] = e.Windows; }
        return o;
    }
}
