using BertSharp.Checkpoints;
using BertSharp.Training;

namespace BertSharp.Tests.Reliability;

/// <summary>Thrown by the fault hook to stop a replacement dead at a named point, as a kill would: no cleanup
/// code runs for it (the replacement only cleans up after I/O failures).</summary>
public sealed class SimulatedCrash(string point) : Exception($"simulated crash at {point}");

/// <summary>
/// A crash at every named step of <see cref="RunFolder.ReplaceFolder"/> and <see cref="RunFolder.ReplaceFiles"/>
/// (simulated in-process through the internal fault hook) leaves a complete checkpoint (the old one or the new
/// one, never a mix) and a model folder that is either the old set of files, the new set, or refused for lacking
/// weights; the next replacement then succeeds. I/O failures (permission denied, disk full) clean up and name the path.
/// </summary>
public class CrashPointTests
{
    internal static readonly string[] FolderPoints = { "begin", "written", "complete", "old-moved", "new-moved", "done" };

    /// <summary>Runs <paramref name="action"/> with the fault hook throwing at the <paramref name="occurrence"/>-th
    /// time <paramref name="point"/> is reached; true if the crash happened.</summary>
    internal static bool CrashAt(string point, Action action, int occurrence = 1)
    {
        int seen = 0;
        RunFolder.FaultHook.Value = p => { if (p == point && ++seen == occurrence) throw new SimulatedCrash(p); };
        try { action(); return false; }
        catch (SimulatedCrash) { return true; }
        finally { RunFolder.FaultHook.Value = null; }
    }

    static void WriteVersion(string dir, int version, bool crashMidway = false)
    {
        // Several files, as a checkpoint has: a crash between them must not matter.
        File.WriteAllText(Path.Combine(dir, "model.safetensors"), $"weights v{version}");
        if (crashMidway) throw new SimulatedCrash("between files");
        File.WriteAllText(Path.Combine(dir, "optimizer.bin"), $"optimizer v{version}");
        File.WriteAllText(Path.Combine(dir, "trainer_state.json"), $"{{\"v\": {version}}}");
    }

    /// <summary>The version a complete checkpoint folder holds; fails if its files disagree.</summary>
    static int VersionOf(string dir)
    {
        var versions = new[] { "model.safetensors", "optimizer.bin", "trainer_state.json" }
            .Select(f => File.ReadAllText(Path.Combine(dir, f)))
            .Select(t => int.Parse(new string(t.Where(char.IsDigit).ToArray())))
            .Distinct().ToList();
        Assert.True(versions.Count == 1, $"{dir} mixes versions {string.Join(", ", versions)}");
        return versions[0];
    }

    [Theory]
    [InlineData("begin")]
    [InlineData("written")]
    [InlineData("complete")]
    [InlineData("old-moved")]
    [InlineData("new-moved")]
    [InlineData("done")]
    public void A_crash_at_any_step_of_a_checkpoint_swap_leaves_a_complete_checkpoint(string point)
    {
        var root = TestPaths.TempDir("crash-" + point);
        var last = Path.Combine(root, "checkpoints", "last");
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 1));

        Assert.True(CrashAt(point, () => RunFolder.ReplaceFolder(last, d => WriteVersion(d, 2))));
        var found = RunFolder.FindCheckpoint(last);
        Assert.NotNull(found);
        int v = VersionOf(found!);
        // Before the new folder is complete only the old one can be found; after, either is acceptable.
        if (point is "begin" or "written") Assert.Equal(1, v);
        if (point is "new-moved" or "done") Assert.Equal(2, v);

        // The next save succeeds and is found; a second crash right in the recovery also leaves a checkpoint.
        CrashAt("recovered", () => RunFolder.ReplaceFolder(last, d => WriteVersion(d, 3)));
        Assert.NotNull(RunFolder.FindCheckpoint(last));
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 4));
        Assert.Equal(last, RunFolder.FindCheckpoint(last));
        Assert.Equal(4, VersionOf(last));
        Assert.False(Directory.Exists(last + ".new"));
        Assert.False(Directory.Exists(last + ".old"));
    }

    [Fact]
    public void A_crash_between_the_files_of_a_checkpoint_keeps_the_previous_one()
    {
        var root = TestPaths.TempDir("crash-midway");
        var last = Path.Combine(root, "last");
        // No checkpoint yet: a crash in the first one leaves none (resume then says so).
        Assert.Throws<SimulatedCrash>(() => RunFolder.ReplaceFolder(last, d => WriteVersion(d, 1, crashMidway: true)));
        Assert.Null(RunFolder.FindCheckpoint(last));
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 1));
        Assert.Throws<SimulatedCrash>(() => RunFolder.ReplaceFolder(last, d => WriteVersion(d, 2, crashMidway: true)));
        Assert.Equal(1, VersionOf(RunFolder.FindCheckpoint(last)!));
    }

    [Fact]
    public void Every_crash_point_in_turn_over_many_saves_always_leaves_the_newest_or_the_previous_checkpoint()
    {
        var root = TestPaths.TempDir("crash-sequence");
        var last = Path.Combine(root, "last");
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 0));
        int saved = 0; // the version found after the previous save
        for (int v = 1; v <= 3 * FolderPoints.Length; v++)
        {
            string point = FolderPoints[v % FolderPoints.Length];
            bool crashed = CrashAt(point, () => RunFolder.ReplaceFolder(last, d => WriteVersion(d, v)));
            if (!crashed) saved = v;
            var found = RunFolder.FindCheckpoint(last);
            Assert.NotNull(found);
            int got = VersionOf(found!);
            Assert.True(got == v || got == saved || got == v - 1, $"after crash at {point} in save {v}: found v{got}, last saved v{saved}");
            saved = got;
        }
    }

    [Fact]
    public void A_folder_without_its_completion_marker_is_never_used_nor_kept_over_a_complete_one()
    {
        var root = TestPaths.TempDir("crash-marker");
        var last = Path.Combine(root, "last");
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 1));
        // Simulate a checkpoint folder half deleted by a crash: files gone, marker gone.
        Directory.CreateDirectory(last + ".new");
        File.WriteAllText(Path.Combine(last + ".new", "model.safetensors"), "partial");
        Assert.Equal(last, RunFolder.FindCheckpoint(last));
        // An incomplete "last" (someone deleted files) next to a complete last.old: last.old is used and kept.
        Directory.Move(last, last + ".old");
        Directory.CreateDirectory(last);
        Assert.Equal(last + ".old", RunFolder.FindCheckpoint(last));
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 2));
        Assert.Equal(2, VersionOf(RunFolder.FindCheckpoint(last)!));
    }

    [Theory]
    [InlineData("written")]
    [InlineData("begin")]
    public void Permission_denied_while_writing_a_checkpoint_is_one_line_naming_the_path_and_keeps_the_previous(string point)
    {
        var root = TestPaths.TempDir("denied");
        var last = Path.Combine(root, "last");
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 1));
        // Root ignores file modes, so the refusal is injected where the OS would raise it.
        RunFolder.FaultHook.Value = p => { if (p == point) throw new UnauthorizedAccessException($"Access to the path '{last}.new/optimizer.bin' is denied."); };
        BertSharpException e;
        try { e = Assert.Throws<BertSharpException>(() => RunFolder.ReplaceFolder(last, d => WriteVersion(d, 2))); }
        finally { RunFolder.FaultHook.Value = null; }
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(last + ".new", e.Message);
        Assert.Contains("is denied", e.Message);
        Assert.Contains("previous checkpoint is unchanged", e.Message);
        Assert.False(Directory.Exists(last + ".new"));
        Assert.Equal(last, RunFolder.FindCheckpoint(last));
        Assert.Equal(1, VersionOf(last));
    }

    [Fact]
    public void A_full_disk_while_writing_a_checkpoint_file_is_one_line_naming_the_file()
    {
        var root = TestPaths.TempDir("full");
        var last = Path.Combine(root, "last");
        RunFolder.ReplaceFolder(last, d => WriteVersion(d, 1));
        var e = Assert.Throws<BertSharpException>(() => RunFolder.ReplaceFolder(last, d =>
            AtomicFile.Write(Path.Combine(d, "model.safetensors"), s => s.Write(new byte[100]), s => new FullDiskStream(s, 10))));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(Path.Combine(last + ".new", "model.safetensors"), e.Message);
        Assert.Contains("No space left on device", e.Message);
        Assert.Equal(1, VersionOf(RunFolder.FindCheckpoint(last)!));
        Assert.False(Directory.Exists(last + ".new"));
    }

    // ---------------------------------------------------------------- the best model's files

    static readonly string[] FilePoints = { "staged-written", "staged", "old-weights-removed", "moved config.json", "moved vocab.txt", "moved model.safetensors", "published" };

    static void WriteModel(string dir, string config, string vocab, string weights)
    {
        File.WriteAllText(Path.Combine(dir, ModelFolder.ConfigFile), config);
        File.WriteAllText(Path.Combine(dir, ModelFolder.VocabFile), vocab);
        File.WriteAllText(Path.Combine(dir, ModelFolder.SafeTensorsFileName), weights);
    }

    static (string? Config, string? Vocab, string? Weights) Read(string dir)
    {
        string? R(string f) => File.Exists(Path.Combine(dir, f)) ? File.ReadAllText(Path.Combine(dir, f)) : null;
        return (R(ModelFolder.ConfigFile), R(ModelFolder.VocabFile), R(ModelFolder.SafeTensorsFileName));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_crash_while_replacing_the_best_model_never_leaves_weights_beside_another_models_files(bool configChanges)
    {
        foreach (var point in FilePoints)
        {
            var dir = TestPaths.TempDir("model-" + point.Replace(' ', '-'));
            RunFolder.ReplaceFiles(dir, d => WriteModel(d, "config A", "vocab A", "weights A1"));
            var oldSet = ("config A", "vocab A", "weights A1");
            var newSet = configChanges ? ("config B", "vocab B", "weights B1") : ("config A", "vocab A", "weights A2");
            CrashAt(point, () => RunFolder.ReplaceFiles(dir, d => WriteModel(d, newSet.Item1, newSet.Item2, newSet.Item3)));

            var now = Read(dir);
            bool consistent = now == oldSet || now == newSet;
            bool refusedForLackingWeights = now.Weights is null && configChanges;
            Assert.True(consistent || refusedForLackingWeights, $"crash at {point}: config '{now.Config}', vocab '{now.Vocab}', weights '{now.Weights}'");

            // What --resume does first: finish the interrupted replacement.
            RunFolder.FinishReplaceFiles(dir);
            now = Read(dir);
            Assert.True(now == oldSet || now == newSet, $"after recovery from {point}: {now}");
            if (point is not "staged-written") Assert.Equal(newSet, now);
            Assert.False(Directory.Exists(Path.Combine(dir, ".model.new")));
        }
    }

    [Fact]
    public void A_full_disk_while_saving_the_best_model_leaves_the_old_files()
    {
        var dir = TestPaths.TempDir("model-full");
        RunFolder.ReplaceFiles(dir, d => WriteModel(d, "config A", "vocab A", "weights A1"));
        var e = Assert.Throws<BertSharpException>(() => RunFolder.ReplaceFiles(dir, d =>
            AtomicFile.Write(Path.Combine(d, "model.safetensors"), s => s.Write(new byte[100]), s => new FullDiskStream(s, 10))));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("No space left on device", e.Message);
        Assert.Equal(("config A", "vocab A", "weights A1"), Read(dir));
        Assert.False(Directory.Exists(Path.Combine(dir, ".model.new")));
    }
}

/// <summary>A stream that fails like a full disk after <c>limit</c> bytes.</summary>
internal sealed class FullDiskStream(Stream inner, long limit) : Stream
{
    long _written;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _written;
    public override long Position { get => _written; set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_written + count > limit) throw new IOException("No space left on device");
        inner.Write(buffer, offset, count);
        _written += count;
    }
}
