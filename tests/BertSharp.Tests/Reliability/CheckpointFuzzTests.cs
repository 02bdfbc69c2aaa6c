using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Tests.Checkpoints;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace BertSharp.Tests.Reliability;

/// <summary>Runs alone, so the memory it measures is its own.</summary>
[CollectionDefinition(nameof(AloneCollection), DisableParallelization = true)]
public sealed class AloneCollection;

/// <summary>
/// Thousands of deterministic mutations of the fixture's model.safetensors header (byte-level and structural:
/// lying lengths, offsets, shapes, dtypes, duplicate names, invalid UTF-8) and of pytorch_model.bin's pickle
/// (byte-level, spliced GLOBALs naming code, extreme integers; re-zipped with valid CRCs so the unpickler sees
/// them), of its zip structure, and of a legacy-format file. Every load must either succeed (tensors no larger
/// than the file) or throw <see cref="BertSharpException"/>: no other exception, no load that hangs, managed
/// allocation per load bounded by a small multiple of the file size, and the process's peak memory growth bounded.
/// A fixed number of mutations from a fixed seed, so every run checks the same files; the rate is logged, not
/// asserted (bench/test-timings.sh prints it).
/// </summary>
[Collection(nameof(AloneCollection))]
public class CheckpointFuzzTests(ITestOutputHelper log)
{
    static readonly TimeSpan Hang = TimeSpan.FromSeconds(60);   // a load takes milliseconds: this catches a loop, not slowness
    const long MaxPeakGrowth = 100L << 20;

    sealed class Report
    {
        public int Loaded, Refused;
        public long MaxAllocated, MaxFileLength;
        public readonly Dictionary<string, int> Reasons = new();
        public readonly List<string> Failures = new();
    }

    /// <summary>Loads each of the <paramref name="mutations"/> files <paramref name="next"/> writes and checks the
    /// outcome; returns the report.</summary>
    Report Fuzz(string name, int mutations, string original, Func<Random, string, string> next, Func<string, Dictionary<string, Tensor>> load)
    {
        var dir = TestPaths.TempDir("fuzz-" + name);
        var rng = new Random(20251126);
        var report = new Report();
        // One unmutated load first: libtorch's first tensor operations set up thread pools and allocator
        // arenas once per process (about 100 MiB of RSS), which is not what this test measures.
        for (int i = 0; i < 2; i++) Task.Run(() => { foreach (var t in load(original).Values) t.Dispose(); }).Wait();
        // Then a round of mutations from another seed, outcomes unchecked: it grows the managed heap to what this
        // loop churns through, whatever state earlier tests left the GC in (the trainer's start-of-run collection
        // decommits it), so the peak below is what the readers hold.
        var warmRng = new Random(1);
        for (int i = 0; i < 256; i++)
        {
            var warmPath = Path.Combine(dir, $"warm{i % 4}.bin");
            next(warmRng, warmPath);
            Task.Run(() =>
            {
                try { foreach (var t in load(warmPath).Values) t.Dispose(); }
                catch (Exception) { }   // the measured loop below checks every outcome
            }).Wait(Hang);
        }
        GC.Collect();
        bool hwm = ResetPeakRss();
        long baseline = Environment.WorkingSet, peak = baseline;
        var clock = Stopwatch.StartNew();
        int n = 0;
        for (; n < mutations; n++)
        {
            var path = Path.Combine(dir, $"case{n % 4}.bin");
            string mutation = next(rng, path);
            long fileLength = new FileInfo(path).Length;
            report.MaxFileLength = Math.Max(report.MaxFileLength, fileLength);
            var task = Task.Run(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try
                {
                    var tensors = load(path);
                    try
                    {
                        foreach (var (k, t) in tensors)
                            if (t.NumberOfElements * t.ElementSize > fileLength)
                                return ($"FAIL tensor {k} is larger than the file", 0L);
                    }
                    finally { foreach (var t in tensors.Values) t.Dispose(); }
                    return ("loaded", GC.GetAllocatedBytesForCurrentThread() - before);
                }
                catch (BertSharpException e)
                {
                    if (e.Message.Contains('\n')) return ($"FAIL multi-line message: {e.Message}", 0L);
                    return ("refused: " + e.Message, GC.GetAllocatedBytesForCurrentThread() - before);
                }
                catch (Exception e)
                {
                    return ($"FAIL {e.GetType().Name}: {e.Message}", 0L);
                }
            });
            if (!task.Wait(Hang))
            {
                report.Failures.Add($"#{n} {mutation}: no answer within {Hang.TotalSeconds} s (kept as {Keep(path, n)})");
                break;
            }
            var (outcome, allocated) = task.Result;
            report.MaxAllocated = Math.Max(report.MaxAllocated, allocated);
            if (outcome.StartsWith("FAIL"))
                report.Failures.Add($"#{n} {mutation}: {outcome} (kept as {Keep(path, n)})");
            else if (outcome == "loaded") report.Loaded++;
            else
            {
                report.Refused++;
                string reason = Reason(outcome);
                report.Reasons[reason] = report.Reasons.GetValueOrDefault(reason) + 1;
            }
            if (allocated > 16 * fileLength + (8 << 20))
                report.Failures.Add($"#{n} {mutation}: allocated {allocated:N0} managed bytes for a {fileLength:N0}-byte file (kept as {Keep(path, n)})");
            if (n % 16 == 0) peak = Math.Max(peak, Environment.WorkingSet);
            // Collect the test's own garbage (each mutated file is built in memory) now and then, so the peak
            // measures what the readers hold, not how lazily the GC returns large-object pages.
            if (n % 128 == 127) GC.Collect();
        }
        peak = Math.Max(peak, Environment.WorkingSet);
        long? hwmPeak = hwm ? PeakRss() : null;
        long growth = (hwmPeak ?? peak) - baseline;
        log.WriteLine($"{name}: {n} mutations in {clock.Elapsed.TotalSeconds:F1} s: {report.Loaded} loaded, {report.Refused} refused, {report.Failures.Count} failures");
        log.WriteLine($"  largest file {report.MaxFileLength:N0} B; most managed bytes allocated by one load {report.MaxAllocated:N0}; " +
                      $"peak RSS growth {growth / 1048576.0:F1} MiB ({(hwmPeak is null ? "sampled" : "VmHWM")})");
        foreach (var (reason, count) in report.Reasons.OrderByDescending(kv => kv.Value).Take(15))
            log.WriteLine($"  {count,5} x {reason}");
        foreach (var f in report.Failures.Take(10)) log.WriteLine("  " + f);

        Assert.True(report.Failures.Count == 0, string.Join("\n", report.Failures.Take(10)));
        Assert.True(growth < MaxPeakGrowth, $"peak memory grew by {growth:N0} bytes");
        return report;
    }

    /// <summary>The kind of refusal, without paths and numbers: "tensor '…': data_offsets […] give N bytes …".</summary>
    static string Reason(string outcome)
    {
        var msg = outcome["refused: ".Length..];
        int colon = msg.IndexOf(": ", StringComparison.Ordinal);
        if (colon > 0 && msg.StartsWith('/')) msg = msg[(colon + 2)..];
        msg = System.Text.RegularExpressions.Regex.Replace(msg, @"'[^']*'", "'…'");
        msg = System.Text.RegularExpressions.Regex.Replace(msg, @"-?\d[\d,]*", "N");
        msg = System.Text.RegularExpressions.Regex.Replace(msg, @"\(.*\)", "(…)");
        return msg.Length > 110 ? msg[..110] + "…" : msg;
    }

    static string Keep(string path, int n)
    {
        var kept = Path.Combine(Path.GetDirectoryName(path)!, $"failure-{n}{Path.GetExtension(path)}");
        File.Copy(path, kept, overwrite: true);
        return kept;
    }

    /// <summary>Resets the kernel's peak-RSS counter of this process (Linux); false where that is not possible.</summary>
    static bool ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return PeakRss() is not null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    static long? PeakRss()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:"));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    // ------------------------------------------------------------------ byte-level mutations

    static readonly byte[][] Interesting =
    {
        "\"".Select(c => (byte)c).ToArray(), "{".Select(c => (byte)c).ToArray(), "}".Select(c => (byte)c).ToArray(),
        "[".Select(c => (byte)c).ToArray(), "]".Select(c => (byte)c).ToArray(), ",".Select(c => (byte)c).ToArray(),
        "9223372036854775807".Select(c => (byte)c).ToArray(), "-1".Select(c => (byte)c).ToArray(),
        "1e308".Select(c => (byte)c).ToArray(), "\\ud800".Select(c => (byte)c).ToArray(),
        [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x00], [0xC3],
    };

    /// <summary>One random edit of <paramref name="data"/>: flip, set, insert, delete, duplicate, truncate, splice.</summary>
    static (byte[] Data, string What) MutateBytes(Random rng, byte[] data)
    {
        var d = new List<byte>(data);
        int pos = d.Count == 0 ? 0 : rng.Next(d.Count);
        switch (rng.Next(7))
        {
            case 0:
                if (d.Count > 0) d[pos] ^= (byte)(1 << rng.Next(8));
                return (d.ToArray(), $"flip a bit at {pos}");
            case 1:
                if (d.Count > 0) d[pos] = (byte)rng.Next(256);
                return (d.ToArray(), $"set byte {pos}");
            case 2:
            {
                var bytes = new byte[1 + rng.Next(8)];
                rng.NextBytes(bytes);
                d.InsertRange(pos, bytes);
                return (d.ToArray(), $"insert {bytes.Length} random bytes at {pos}");
            }
            case 3:
            {
                int len = Math.Min(d.Count - pos, 1 + rng.Next(64));
                d.RemoveRange(pos, len);
                return (d.ToArray(), $"delete {len} bytes at {pos}");
            }
            case 4:
            {
                int len = Math.Min(d.Count - pos, 1 + rng.Next(256));
                d.InsertRange(rng.Next(d.Count + 1), d.GetRange(pos, len));
                return (d.ToArray(), $"duplicate {len} bytes from {pos}");
            }
            case 5:
                return (data[..pos], $"truncate to {pos} bytes");
            default:
            {
                var s = Interesting[rng.Next(Interesting.Length)];
                d.InsertRange(pos, s);
                return (d.ToArray(), $"insert {Convert.ToHexString(s)} at {pos}");
            }
        }
    }

    // ------------------------------------------------------------------ safetensors

    static readonly byte[] SafeTensors = File.ReadAllBytes(CheckpointTestUtil.Fixture("model.safetensors"));

    static (byte[] Header, byte[] Data) SplitSafeTensors()
    {
        long n = BitConverter.ToInt64(SafeTensors, 0);
        return (SafeTensors[8..(int)(8 + n)], SafeTensors[(int)(8 + n)..]);
    }

    static byte[] Join(byte[] header, byte[] data, ulong? declared = null)
    {
        var result = new byte[8 + header.Length + data.Length];
        BitConverter.TryWriteBytes(result.AsSpan(0, 8), declared ?? (ulong)header.Length);
        header.CopyTo(result, 8);
        data.CopyTo(result, 8 + header.Length);
        return result;
    }

    static readonly long[] Extremes = { 0, 1, -1, 7, 255, 65536, int.MaxValue, 1L << 32, 1L << 40, 1L << 62, long.MaxValue, long.MinValue };

    /// <summary>A structural lie in the header: a shape, dtype or offsets that do not fit, a duplicate name,
    /// invalid UTF-8 or a lone surrogate in a name, odd metadata, deep nesting.</summary>
    static (byte[] Header, string What) MutateHeader(Random rng, byte[] header)
    {
        var root = JsonNode.Parse(header)!.AsObject();
        var names = root.Where(kv => kv.Key != "__metadata__").Select(kv => kv.Key).ToList();
        string name = names[rng.Next(names.Count)];
        var entry = root[name]!.AsObject();
        string what;
        switch (rng.Next(10))
        {
            case 0:
            {
                var shape = entry["shape"]!.AsArray();
                long v = Extremes[rng.Next(Extremes.Length)];
                if (shape.Count == 0) shape.Add(v); else shape[rng.Next(shape.Count)] = v;
                what = $"shape of {name} gets {v}";
                break;
            }
            case 1:
            {
                var shape = entry["shape"]!.AsArray();
                int add = rng.Next(1, 80);
                for (int i = 0; i < add; i++) shape.Add(rng.Next(2) == 0 ? 1 : Extremes[rng.Next(Extremes.Length)]);
                what = $"shape of {name} gets {add} more dimensions";
                break;
            }
            case 2:
            {
                var dtypes = new[] { "F32", "F16", "BF16", "F64", "I64", "I8", "U8", "BOOL", "F8_E4M3", "", "f32", "Q4" };
                var dt = dtypes[rng.Next(dtypes.Length)];
                entry["dtype"] = dt;
                what = $"dtype of {name} becomes '{dt}'";
                break;
            }
            case 3:
            {
                var off = entry["data_offsets"]!.AsArray();
                int i = rng.Next(2);
                long v = rng.Next(3) == 0 ? Extremes[rng.Next(Extremes.Length)] : off[i]!.GetValue<long>() + rng.Next(-4096, 4097);
                off[i] = v;
                what = $"data_offsets[{i}] of {name} becomes {v}";
                break;
            }
            case 4:
            {
                // Overlap: point this tensor at another's bytes (same size, so only the overlap check can catch it).
                string other = names[rng.Next(names.Count)];
                var src = root[other]!["data_offsets"]!.AsArray();
                long begin = src[0]!.GetValue<long>() + rng.Next(0, 16) * 4;
                var off = entry["data_offsets"]!.AsArray();
                long size = off[1]!.GetValue<long>() - off[0]!.GetValue<long>();
                entry["data_offsets"] = new JsonArray(begin, begin + size);
                what = $"{name} overlaps {other}";
                break;
            }
            case 5:
            {
                // A duplicate name: JsonObject cannot hold one, so splice the raw text.
                var text = root.ToJsonString();
                var dup = $"\"{name}\":{entry.ToJsonString()},";
                return (Encoding.UTF8.GetBytes("{" + dup + text[1..]), $"duplicate {name}");
            }
            case 6:
            {
                var bad = new[] { new byte[] { 0xFF }, new byte[] { 0xC0, 0x80 }, new byte[] { 0xED, 0xA0, 0x80 }, new byte[] { 0xC3 } }[rng.Next(4)];
                var text = Encoding.UTF8.GetBytes(root.ToJsonString());
                var key = Encoding.UTF8.GetBytes($"\"{name}\"");
                int at = text.AsSpan().IndexOf(key) + 2;
                return ([.. text[..at], .. bad, .. text[at..]], $"invalid UTF-8 {Convert.ToHexString(bad)} in the name {name}");
            }
            case 7:
            {
                var text = root.ToJsonString().Replace($"\"{name}\"", $"\"{name}\\udc00\\ud800\"");
                return (Encoding.UTF8.GetBytes(text), $"lone surrogates escaped in the name {name}");
            }
            case 8:
            {
                int depth = rng.Next(10, 2000);
                root["__metadata__"] = null;
                var text = root.ToJsonString();
                var nest = new string('[', depth) + new string(']', depth);
                text = text.Replace("\"__metadata__\":null", $"\"__metadata__\":{{\"x\":{nest}}}");
                return (Encoding.UTF8.GetBytes(text), $"metadata nested {depth} deep");
            }
            default:
            {
                root.Remove(name);
                what = $"{name} removed";
                break;
            }
        }
        return (Encoding.UTF8.GetBytes(root.ToJsonString()), what);
    }

    [Fact]
    public void Mutated_safetensors_files_load_or_are_refused_with_a_clear_error_in_bounded_memory()
    {
        var (header, data) = SplitSafeTensors();
        var report = Fuzz("safetensors", 3000, CheckpointTestUtil.Fixture("model.safetensors"), (rng, path) =>
        {
            byte[] file;
            string what;
            switch (rng.Next(10))
            {
                case < 4:
                {
                    var (h, w) = MutateHeader(rng, header);
                    (file, what) = (Join(h, data), w);
                    break;
                }
                case < 7:
                {
                    var (h, w) = MutateBytes(rng, header);
                    bool stale = rng.Next(4) == 0; // sometimes leave the declared length as it was
                    (file, what) = (Join(h, data, stale ? (ulong)header.Length : null), "header: " + w + (stale ? " (length prefix unchanged)" : ""));
                    break;
                }
                case 7:
                {
                    ulong declared = rng.Next(3) switch
                    {
                        0 => (ulong)Extremes[rng.Next(Extremes.Length)],
                        1 => (ulong)(header.Length + rng.Next(-16, 17)),
                        _ => (ulong)(SafeTensors.Length - 8 + rng.Next(-2, 3)),
                    };
                    (file, what) = (Join(header, data, declared), $"declared header length {declared}");
                    break;
                }
                case 8:
                {
                    var (d, w) = MutateBytes(rng, data);
                    (file, what) = (Join(header, d), "data: " + w);
                    break;
                }
                default:
                {
                    var (f, w) = MutateBytes(rng, SafeTensors);
                    (file, what) = (f, "whole file: " + w);
                    break;
                }
            }
            File.WriteAllBytes(path, file);
            return what;
        }, SafeTensorsFile.Load);
        Assert.True(report.Loaded > 0 && report.Refused > 0);
    }

    [Fact]
    public void A_lone_surrogate_escaped_in_a_tensor_name_is_refused_with_a_clear_error()
    {
        // Found by the fuzz test: System.Text.Json threw InvalidOperationException (a crash with exit code 2).
        var (header, data) = SplitSafeTensors();
        var text = Encoding.UTF8.GetString(header).Replace("\"cls.predictions.bias\"", "\"cls.predictions.bias\\ud800\"");
        var path = Path.Combine(TestPaths.TempDir("surrogate"), "model.safetensors");
        File.WriteAllBytes(path, Join(Encoding.UTF8.GetBytes(text), data));
        var e = Assert.Throws<BertSharpException>(() => SafeTensorsFile.Load(path));
        CheckpointTestUtil.AssertMessage(e, path, "the header holds a string that is not valid Unicode");
    }

    // ------------------------------------------------------------------ torch.save

    static readonly (string Name, byte[] Data)[] TorchEntries = ReadZip(CheckpointTestUtil.Fixture("pytorch_model.bin"));

    static (string, byte[])[] ReadZip(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        return zip.Entries.Select(e =>
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, ms.ToArray());
        }).ToArray();
    }

    static byte[] Zip(IEnumerable<(string Name, byte[] Data)> entries)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        }
        return ms.ToArray();
    }

    static readonly string[] Globals =
    {
        "os\nsystem", "posix\nsystem", "builtins\neval", "builtins\nexec", "__builtin__\ngetattr", "subprocess\nPopen",
        "torch\nload", "numpy.core.multiarray\n_reconstruct", "collections\nOrderedDict", "torch._utils\n_rebuild_tensor_v2",
        "torch\nFloatStorage", "torch._utils\n_rebuild_parameter", "builtins\nset",
    };

    /// <summary>A pickle-aware edit: a GLOBAL naming code (or an allowed name) spliced in, an integer made extreme.</summary>
    static (byte[] Data, string What) MutatePickle(Random rng, byte[] pkl)
    {
        int pos = rng.Next(pkl.Length);
        if (rng.Next(2) == 0)
        {
            var g = Globals[rng.Next(Globals.Length)];
            var bytes = rng.Next(2) == 0
                ? Encoding.ASCII.GetBytes("c" + g + "\n")
                : [.. Encoding.ASCII.GetBytes("X"), .. BitConverter.GetBytes(g.Split('\n')[0].Length), .. Encoding.ASCII.GetBytes(g.Split('\n')[0]),
                   .. Encoding.ASCII.GetBytes("X"), .. BitConverter.GetBytes(g.Split('\n')[1].Length), .. Encoding.ASCII.GetBytes(g.Split('\n')[1]), 0x93];
            // Prefer an opcode boundary: just before a BINUNICODE ('X') or BININT ('J').
            int at = Array.FindIndex(pkl, pos, b => b is (byte)'X' or (byte)'J');
            if (at < 0) at = pos;
            return ([.. pkl[..at], .. bytes, .. pkl[at..]], $"GLOBAL {g.Replace('\n', '.')} spliced at {at}");
        }
        int j = Array.FindIndex(pkl, pos, b => b == (byte)'J');
        if (j < 0 || j + 5 > pkl.Length) return MutateBytes(rng, pkl);
        var copy = (byte[])pkl.Clone();
        int v = new[] { int.MaxValue, int.MinValue, -1, 0, 1 << 30, rng.Next() }[rng.Next(6)];
        BitConverter.TryWriteBytes(copy.AsSpan(j + 1, 4), v);
        return (copy, $"BININT at {j} becomes {v}");
    }

    [Fact]
    public void Mutated_torch_save_files_load_or_are_refused_with_a_clear_error_in_bounded_memory()
    {
        int pklIndex = Array.FindIndex(TorchEntries, e => e.Name.EndsWith("/data.pkl"));
        var pkl = TorchEntries[pklIndex].Data;
        var original = File.ReadAllBytes(CheckpointTestUtil.Fixture("pytorch_model.bin"));
        var legacy = Legacy();
        var report = Fuzz("pytorch", 3000, CheckpointTestUtil.Fixture("pytorch_model.bin"), (rng, path) =>
        {
            byte[] file;
            string what;
            switch (rng.Next(10))
            {
                case < 4:
                {
                    var (p, w) = MutatePickle(rng, pkl);
                    var entries = TorchEntries.ToArray();
                    entries[pklIndex] = (entries[pklIndex].Name, p);
                    (file, what) = (Zip(entries), "data.pkl: " + w);
                    break;
                }
                case < 7:
                {
                    var (p, w) = MutateBytes(rng, pkl);
                    var entries = TorchEntries.ToArray();
                    entries[pklIndex] = (entries[pklIndex].Name, p);
                    (file, what) = (Zip(entries), "data.pkl: " + w);
                    break;
                }
                case < 9:
                {
                    var (f, w) = MutateBytes(rng, original);
                    (file, what) = (f, "zip: " + w);
                    break;
                }
                default:
                {
                    var (f, w) = MutateBytes(rng, legacy);
                    (file, what) = (f, "legacy: " + w);
                    break;
                }
            }
            File.WriteAllBytes(path, file);
            return what;
        }, PyTorchCheckpointFile.Load);
        Assert.True(report.Loaded > 0 && report.Refused > 0);
        log.WriteLine($"  {report.Reasons.Where(kv => kv.Key.StartsWith("refusing to load")).Sum(kv => kv.Value)} refusals name a global a state dict never needs");
    }

    /// <summary>A legacy-format (PyTorch &lt; 1.6) checkpoint of two small tensors.</summary>
    static byte[] Legacy()
    {
        var path = Path.Combine(TestPaths.TempDir("fuzz-legacy"), "legacy.bin");
        var a = Enumerable.Range(0, 12).SelectMany(i => BitConverter.GetBytes((float)i)).ToArray();
        var b = Enumerable.Range(0, 4).SelectMany(i => BitConverter.GetBytes((long)i)).ToArray();
        TorchSaveWriter.WriteLegacy(path,
            new[]
            {
                new TorchEntry("w", "FloatStorage", "0", 12, 0, new long[] { 3, 4 }, new long[] { 4, 1 }),
                new TorchEntry("ids", "LongStorage", "1", 4, 0, new long[] { 4 }, new long[] { 1 }),
            },
            new List<(string, long, byte[])> { ("0", 12, a), ("1", 4, b) });
        return File.ReadAllBytes(path);
    }
}
