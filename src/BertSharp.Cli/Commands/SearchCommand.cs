using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Reporting;
using BertSharp.Search;

namespace BertSharp.Cli.Commands;

/// <summary>`bert search index MODEL --input corpus.txt --output corpus.index` and `bert search query corpus.index TEXT...`.</summary>
public static class SearchCommand
{
    public static Command Build(CommandContext ctx)
    {
        var cmd = new Command("search", "Semantic search: embed a corpus once into an index file, then find the texts closest to a query");
        cmd.Add(BuildIndex(ctx));
        cmd.Add(BuildQuery(ctx));
        return cmd;
    }

    static Command BuildIndex(CommandContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "A sentence-embedding model: a folder (sentence-transformers, a `bert finetune embed` run, any BERT folder) or a Hub id: name, org/name or org/name@revision" };
        var input = new Option<string>("--input") { Description = "The corpus: one text per line (blank lines skipped), or a table with --text-column", Required = true };
        var output = new Option<string>("--output") { Description = "The index file to write", Required = true };
        var column = new Option<string?>("--text-column") { Description = "Index this column of a TSV/CSV/JSONL file (a header name or a 0-based index; .jsonl: default \"text\")" };
        var noTexts = new Option<bool>("--no-texts") { Description = "Store only each text's line number, not the text" };
        var batch = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var cmd = new Command("index", "Embed each text of a corpus file once and write an index of the vectors") { model, input, output, column, noTexts, batch };
        cmd.WithDetails("The index records the model, so `bert search query` loads it again. Vectors are stored at unit length; scores are cosine similarities.\n" +
            TextLineReader.InputRule);
        cmd.SetAction(r =>
        {
            string modelArg = r.GetRequiredValue(model), corpus = r.GetRequiredValue(input), path = r.GetRequiredValue(output);
            var texts = SearchCorpus.Read(corpus, r.GetValue(column));
            using var encoder = SentenceEncoder.Load(modelArg, EncoderOptions(r) with { BatchSize = r.GetValue(batch) });
            foreach (var note in encoder.Notes) ctx.Err.WriteLine($"note: {note}");
            var clock = Stopwatch.StartNew();
            EmbeddingIndex index;
            using (var bar = new ConsoleProgress(texts.Count, label: "embedding", output: ctx.Err, interactive: ReferenceEquals(ctx.Err, Console.Error) && !Console.IsErrorRedirected))
                index = SemanticSearch.BuildIndex(encoder, texts, new IndexCorpusOptions { StoreTexts = !r.GetValue(noTexts), ModelName = modelArg },
                    new InlineProgress<IndexingProgress>(p => bar.Update(p.Embedded, sequencesPerSecond: p.TextsPerSecond)));
            using (index)
            {
                index.Save(path);
                ctx.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"indexed {index.Count:N0} texts of {corpus} with {index.Model} ({index.Dimension} dimensions) in {clock.Elapsed.TotalSeconds:F1} s: {path} ({new FileInfo(path).Length / 1048576.0:F1} MiB)"));
            }
            return 0;
        });
        return cmd;
    }

    static Command BuildQuery(CommandContext ctx)
    {
        var indexArg = new Argument<string>("INDEX") { Description = "An index file written by `bert search index`" };
        var texts = new Argument<string[]>("TEXT") { Description = "Queries, one per argument; without any, one per line of --input", Arity = ArgumentArity.ZeroOrMore };
        var input = new Option<string?>("--input") { Description = "Read queries from this file, one per line (- for stdin)" };
        var topK = new Option<int>("--top-k") { Description = "Results per query", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Write one JSON line per query" };
        var model = new Option<string?>("--model") { Description = "Embed the queries with this model (a folder or a Hub id) instead of the one the index names; it must make vectors of the same dimension" };
        var cmd = new Command("query", "Find the texts of an index closest to each query, by cosine similarity (exact)") { indexArg, texts, input, topK, json, model };
        cmd.WithDetails("Plain output: for each query, its text, then one line per result: rank, score, line number in the corpus, text. " +
            "--json: {\"query\": …, \"hits\": [{\"rank\", \"score\", \"line\", \"index\", \"text\"}]} per line.");
        cmd.SetAction(r =>
        {
            int k = r.GetValue(topK);
            if (k < 1) throw new BertSharpException($"--top-k must be 1 or more (got {k})");
            var queries = r.GetValue(texts) ?? [];
            string? file = r.GetValue(input);
            if (queries.Length > 0 && file != null) throw new BertSharpException("give either TEXT arguments or --input, not both");
            if (queries.Length == 0 && file == null) throw new BertSharpException("give the queries as TEXT arguments or with --input FILE");
            if (file != null) queries = ReadQueries(file);
            using var search = SemanticSearch.Open(r.GetRequiredValue(indexArg), r.GetValue(model), EncoderOptions(r));
            foreach (var note in search.Encoder.Notes) ctx.Err.WriteLine($"note: {note}");
            if (r.GetValue(Cli.Threads) is int threads) search.Index.Threads = threads;
            if (!search.UsesIndexModel)
                ctx.Err.WriteLine($"warning: the index was built with {search.Index.Model}; the queries are embedded with {search.QueryModel}");
            bool asJson = r.GetValue(json);
            for (int start = 0; start < queries.Length; start += QueriesPerPass)
            {
                var part = queries.Skip(start).Take(QueriesPerPass).ToArray();
                var results = search.Search(part, k);
                for (int q = 0; q < part.Length; q++) Write(ctx.Out, part[q], results[q], asJson, queries.Length > 1);
                ctx.Out.Flush();
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Queries embedded and searched together: one pass over the index serves them all.</summary>
    const int QueriesPerPass = 256;

    static SentenceEncoderOptions EncoderOptions(ParseResult r) => new() { Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)! };

    static string[] ReadQueries(string file)
    {
        using var reader = file == "-" ? new TextLineReader(Console.OpenStandardInput(), "stdin") : TextLineReader.Open(file);
        var queries = new List<string>();
        while (reader.TryReadLine(out var line))
            if (!string.IsNullOrWhiteSpace(line)) queries.Add(line);
        if (queries.Count == 0) throw new BertSharpException($"{reader.SourceName}: no queries: the file has no text");
        return queries.ToArray();
    }

    static readonly JsonSerializerOptions JsonOut = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static void Write(TextWriter o, string query, SearchHit[] hits, bool json, bool several)
    {
        var inv = CultureInfo.InvariantCulture;
        if (json)
        {
            var line = new JsonObject
            {
                ["query"] = query,
                ["hits"] = new JsonArray(hits.Select((h, i) => (JsonNode)new JsonObject
                {
                    ["rank"] = i + 1, ["score"] = Math.Round(h.Score, 6), ["line"] = h.Line, ["index"] = h.Index, ["text"] = h.Text,
                }).ToArray()),
            };
            o.WriteLine(line.ToJsonString(JsonOut));
            return;
        }
        if (several) o.WriteLine($"query: {query}");
        for (int i = 0; i < hits.Length; i++)
            o.WriteLine(string.Create(inv, $"{i + 1,3}  {hits[i].Score:F4}  line {hits[i].Line,-7} {hits[i].Text}"));
        if (several) o.WriteLine();
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool).</summary>
sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
