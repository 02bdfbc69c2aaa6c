// Exact search speed of BertSharp.Search.EmbeddingIndex (docs/EMBEDDINGS.md, "Search").
//
// synthetic: --rows random vectors of --dim numbers (uniform in [-1, 1], normalised by the index), built, saved to
//   --path, loaded back (memory-mapped), then searched: single queries and batches of 32, at 1 and 2 threads; each
//   figure the median of --repeats timed runs after one untimed warm-up. Prints build/save/load times and peak RSS.
//
// dotnet run -c Release --project bench/SearchBench -- synthetic [--rows 1000000] [--dim 384] [--repeats 20]
//     [--path /tmp/bertsharp-search-bench.index] [--keep] [--in-memory]
//
// stsb: indexes both sentences of every pair of an STS-B file (row 2p: sentence 1 of pair p, row 2p + 1: sentence 2)
//   with a sentence encoder, searches each sentence, and counts how often its pair partner is among the 5 nearest
//   other rows (its own row left out), overall and by gold score; chance is 5 / (rows - 1).
//
// dotnet run -c Release --project bench/SearchBench -- stsb MODEL_DIR [--data ../shared/data/stsb/sts-test.csv] [--top 5]
using System.Diagnostics;
using System.Globalization;
using BertSharp.Inference;
using BertSharp.Search;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var a = new Dictionary<string, string>();
for (int i = 1; i < args.Length; i++)
    if (args[i].StartsWith("--")) a[args[i]] = i + 1 < args.Length && !args[i + 1].StartsWith("--") ? args[++i] : "true";
string Arg(string name, string dflt) => a.TryGetValue(name, out var v) ? v : dflt;
string mode = args.Length > 0 ? args[0] : "--help";

switch (mode)
{
    case "synthetic": return Synthetic();
    case "stsb": return Stsb(args.Length > 1 ? args[1] : throw new ArgumentException("stsb MODEL_DIR"));
    default:
        Console.WriteLine("see the comment at the top of bench/SearchBench/Program.cs");
        return mode == "--help" ? 0 : 2;
}

int Synthetic()
{
    int rows = int.Parse(Arg("--rows", "1000000"));
    int dim = int.Parse(Arg("--dim", "384"));
    int repeats = int.Parse(Arg("--repeats", "20"));
    string path = Arg("--path", Path.Combine(Path.GetTempPath(), "bertsharp-search-bench.index"));
    Console.WriteLine($"load average before: {File.ReadAllText("/proc/loadavg").Trim()}");
    Console.WriteLine($"{rows:N0} x {dim} random vectors, {Environment.ProcessorCount} cores, Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");

    var rng = new Random(1);
    var sw = Stopwatch.StartNew();
    using (var builder = new EmbeddingIndexBuilder("random", dim, modelNormalizes: false, storeTexts: false, capacity: rows))
    {
        var v = new float[dim];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < dim; j++) v[j] = rng.NextSingle() * 2 - 1;
            builder.Add(v);
        }
        Console.WriteLine($"build (generate + normalise + add): {sw.Elapsed.TotalSeconds:F2} s, RSS {Rss("VmRSS"):F0} MiB");
        using var built = builder.Build();
        if (Arg("--in-memory", "false") == "true")
        {
            var q0 = Enumerable.Range(0, dim).Select(_ => rng.NextSingle() * 2 - 1).ToArray();
            built.Threads = 1;
            for (int rep = 0; rep < 5; rep++)
            {
                var t = Stopwatch.StartNew();
                built.Search(q0, 10);
                Console.WriteLine($"in memory, single query, 1 thread: {t.Elapsed.TotalMilliseconds:F1} ms");
            }
        }
        sw.Restart();
        built.Save(path);
        Console.WriteLine($"save: {sw.Elapsed.TotalSeconds:F2} s ({new FileInfo(path).Length / 1048576.0:F0} MiB, written and flushed to disk)");
    }
    GC.Collect();
    Console.WriteLine($"RSS after the built index is freed: {Rss("VmRSS"):F0} MiB");

    sw.Restart();
    using var index = EmbeddingIndex.Load(path);
    Console.WriteLine($"load (map + check header and tables): {sw.Elapsed.TotalMilliseconds:F1} ms, RSS {Rss("VmRSS"):F0} MiB");
    var queries = Enumerable.Range(0, 32 * (repeats + 1)).Select(_ => Enumerable.Range(0, dim).Select(_ => rng.NextSingle() * 2 - 1).ToArray()).ToArray();
    sw.Restart();
    index.Threads = 1;
    index.Search(queries[0], 5);
    Console.WriteLine($"first query (pages of the mapping touched for the first time): {sw.Elapsed.TotalMilliseconds:F0} ms, RSS {Rss("VmRSS"):F0} MiB");

    // CPU time beside wall time: on a machine busy with other work the wall time counts the waits for a core too
    Console.WriteLine("| threads | queries per call | ms per call | ms per query | queries/s | CPU ms per call |");
    Console.WriteLine("|---|---|---|---|---|---|");
    foreach (int threads in new[] { 1, 2 })
        foreach (int batch in new[] { 1, 32 })
        {
            index.Threads = threads;
            var times = new List<double>();
            var cpu = new List<double>();
            var process = Process.GetCurrentProcess();
            for (int rep = 0; rep <= repeats; rep++)
            {
                var qs = queries.Skip(rep * 32).Take(batch).ToArray();
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                var t = Stopwatch.StartNew();
                if (batch == 1) index.Search(qs[0], 10);
                else index.Search(qs, 10);
                double wall = t.Elapsed.TotalMilliseconds;
                process.Refresh();
                if (rep > 0) { times.Add(wall); cpu.Add((process.TotalProcessorTime - cpu0).TotalMilliseconds); }
            }
            times.Sort();
            cpu.Sort();
            double median = times[times.Count / 2];
            Console.WriteLine($"| {threads} | {batch} | {median:F1} | {median / batch:F2} | {1000 * batch / median:F1} | {cpu[cpu.Count / 2]:F0} |");
        }
    Console.WriteLine($"peak RSS (VmHWM): {Rss("VmHWM"):F0} MiB; RSS now {Rss("VmRSS"):F0} MiB (the mapped file's pages count once touched)");
    index.Dispose();
    Console.WriteLine($"for comparison, a plain read of as many bytes (vectorised sum of a {rows:N0} x {dim} float array in memory): {ReadBaseline((long)rows * dim):F1} ms");
    Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
    if (Arg("--keep", "false") != "true") File.Delete(path);
    return 0;
}

int Stsb(string modelDir)
{
    string data = Arg("--data", "../shared/data/stsb/sts-test.csv");
    int top = int.Parse(Arg("--top", "5"));
    // tab-separated: genre, file, year, id, score, sentence 1, sentence 2 (some lines add source columns after)
    var pairs = File.ReadLines(data).Select(l => l.Split('\t')).Select(f => (Score: double.Parse(f[4], CultureInfo.InvariantCulture), A: f[5], B: f[6])).ToList();
    var texts = pairs.SelectMany(p => new[] { p.A, p.B }).ToList();
    BertSharp.Runtime.ProcessTuning.Apply();   // as the `bert` command does, before anything touches libtorch
    using var encoder = SentenceEncoder.Load(modelDir, new SentenceEncoderOptions { BatchSize = 64 });
    var sw = Stopwatch.StartNew();
    using var index = SemanticSearch.BuildIndex(encoder, texts.Select((t, i) => new CorpusText(i + 1, t)).ToList());
    double embedSeconds = sw.Elapsed.TotalSeconds;
    sw.Restart();
    var queries = encoder.Encode(texts);
    double queryEmbedSeconds = sw.Elapsed.TotalSeconds;
    sw.Restart();
    var results = index.Search(queries, top + 1);
    double searchSeconds = sw.Elapsed.TotalSeconds;
    int hits = 0, textHits = 0;
    var buckets = new SortedDictionary<int, (int Hits, int Total)>();
    for (int row = 0; row < texts.Count; row++)
    {
        int partner = row ^ 1;
        var others = results[row].Where(h => h.Index != row).Take(top).ToList();
        bool hit = others.Any(h => h.Index == partner);
        hits += hit ? 1 : 0;
        textHits += others.Any(h => h.Text == texts[partner]) ? 1 : 0;
        int bucket = (int)Math.Min(4, Math.Floor(pairs[row / 2].Score));
        var b = buckets.GetValueOrDefault(bucket);
        buckets[bucket] = (b.Hits + (hit ? 1 : 0), b.Total + 1);
    }
    int n = texts.Count;
    Console.WriteLine($"{data}: {pairs.Count} pairs, {n} sentences; model {modelDir}; indexed in {embedSeconds:F1} s, queries embedded in {queryEmbedSeconds:F1} s, {n} searches (one batch) in {searchSeconds * 1000:F0} ms");
    Console.WriteLine($"partner among the {top} nearest other sentences: {hits}/{n} = {100.0 * hits / n:F1} % (by text, a copy of the partner counting too: {100.0 * textHits / n:F1} %); chance {top}/{n - 1} = {100.0 * top / (n - 1):F2} %");
    Console.WriteLine("| gold score | sentences | partner in top 5 |");
    Console.WriteLine("|---|---|---|");
    foreach (var (bucket, (h, t)) in buckets)
        Console.WriteLine($"| {(bucket == 4 ? "4-5" : $"{bucket}-{bucket + 1}")} | {t} | {100.0 * h / t:F1} % |");
    return 0;
}

// The time to stream the same number of floats from memory once: the floor for a single query.
static unsafe double ReadBaseline(long count)
{
    var data = GC.AllocateUninitializedArray<float>(checked((int)count), pinned: true);
    data.AsSpan().Fill(1);
    var times = new List<double>();
    fixed (float* p = data)
        for (int rep = 0; rep < 6; rep++)
        {
            var t = Stopwatch.StartNew();
            var acc = System.Runtime.Intrinsics.Vector512<float>.Zero;
            for (long i = 0; i + 16 <= count; i += 16) acc += System.Runtime.Intrinsics.Vector512.Load(p + i);
            if (System.Runtime.Intrinsics.Vector512.Sum(acc) < 0) Console.Write("");
            if (rep > 0) times.Add(t.Elapsed.TotalMilliseconds);
        }
    times.Sort();
    return times[times.Count / 2];
}

static double Rss(string field)
{
    foreach (var line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith(field + ":"))
            return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
    return double.NaN;
}
