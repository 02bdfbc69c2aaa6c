using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;

namespace BertSharp.Training;

/// <summary>
/// The layout of a run folder (ARCHITECTURE.md): the best model in HF layout at the root, the full training
/// state under checkpoints/last, args.json, metrics, TensorBoard events and plots.
/// </summary>
/// <remarks>
/// Crash safety: the checkpoint folder is replaced as a whole (<see cref="ReplaceFolder"/>) and the best model's
/// files as a set (<see cref="ReplaceFiles"/>), so a crash, a kill or a full disk at any moment leaves a
/// complete previous checkpoint and a matching set of model files. A run holds the folder's lock
/// (<see cref="Lock"/>) so a second run cannot write into it at the same time.
/// </remarks>
public sealed class RunFolder
{
    public RunFolder(string root) { Root = Path.GetFullPath(root); }

    public string Root { get; }
    public string Checkpoints => Path.Combine(Root, "checkpoints");
    public string LastCheckpoint => Path.Combine(Checkpoints, "last");
    public string Plots => Path.Combine(Root, "plots");
    public string ArgsFile => Path.Combine(Root, "args.json");

    /// <summary>The file a run holds an OS lock on while it writes into the folder (never deleted: deleting
    /// a lock file races with a process that has just opened it).</summary>
    public const string LockFileName = ".lock";

    /// <summary>Who holds the lock: "pid N on HOST since TIME", for the refusal message.</summary>
    internal const string LockOwnerFileName = ".lock.owner";

    /// <summary>Takes this folder for the calling process, creating the folder if needed; held until disposed
    /// or the process ends (the OS releases it even after a kill, so a crashed run never blocks --resume).
    /// Taking it again in the same process is allowed (counted). Another process holding it is a
    /// <see cref="BertSharpException"/> naming the folder and, when known, that process.</summary>
    public RunLock Lock() => RunLock.Acquire(Root);

    public void WriteArgs(IReadOnlyDictionary<string, object?> args)
    {
        var o = new JsonObject();
        foreach (var (k, v) in args) o[k] = JsonSerializer.SerializeToNode(v);
        Directory.CreateDirectory(Root);
        AtomicFile.WriteAllText(ArgsFile, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    const string CompleteMarker = ".complete";
    const string StagingFolderName = ".model.new";

    /// <summary>Test hook: called with the name of each step of <see cref="ReplaceFolder"/> and
    /// <see cref="ReplaceFiles"/> as it is reached, on the calling flow only. A test throws from it to
    /// simulate a crash at that moment.</summary>
    internal static readonly AsyncLocal<Action<string>?> FaultHook = new();

    static void Point(string name) => FaultHook.Value?.Invoke(name);

    /// <summary>
    /// Replaces a checkpoint folder as a whole: <paramref name="write"/> fills a fresh sibling folder
    /// (<c>DIR.new</c>), whose files are flushed to disk and then marked complete; it then takes the old one's
    /// place by renames (the old one waits at <c>DIR.old</c> until the new one is in place). A crash at any point
    /// leaves a complete folder at <paramref name="dir"/>, <c>DIR.new</c> or <c>DIR.old</c>, which
    /// <see cref="FindCheckpoint"/> finds. An I/O failure (disk full, permission denied) removes the partial
    /// folder and is a <see cref="BertSharpException"/> naming it; the previous checkpoint is left as it was.
    /// </summary>
    public static void ReplaceFolder(string dir, Action<string> write)
    {
        dir = Path.GetFullPath(dir);
        var fresh = dir + ".new";
        var old = dir + ".old";
        try
        {
            Recover(dir);
            if (Directory.Exists(fresh)) DeleteFolder(fresh);
            Directory.CreateDirectory(fresh);
            Point("begin");
            write(fresh);
            Point("written");
            foreach (var f in Directory.EnumerateFiles(fresh, "*", SearchOption.AllDirectories)) AtomicFile.FlushFileToDisk(f);
            AtomicFile.WriteAllText(Path.Combine(fresh, CompleteMarker), ""); // flushes the file and the folder
            Point("complete");
        }
        catch (Exception e) when (IsIOFailure(e))
        {
            TryDeleteFolder(fresh);
            throw new BertSharpException($"{fresh}: could not write the checkpoint: {Reason(e)}; the previous checkpoint is unchanged", e);
        }
        try
        {
            if (IsComplete(dir))
            {
                if (Directory.Exists(old)) DeleteFolder(old);
                Directory.Move(dir, old);
                Point("old-moved");
            }
            else if (Directory.Exists(dir))
            {
                DeleteFolder(dir); // not a checkpoint (no marker): nothing to keep
            }
            Directory.Move(fresh, dir);
            AtomicFile.FlushFolderToDisk(Path.GetDirectoryName(dir)!);
            Point("new-moved");
            if (Directory.Exists(old)) DeleteFolder(old);
            Point("done");
        }
        catch (Exception e) when (IsIOFailure(e))
        {
            throw new BertSharpException($"{dir}: could not put the new checkpoint in place: {Reason(e)}; the last complete one is {FindCheckpoint(dir) ?? "gone"}", e);
        }
    }

    /// <summary>The last complete checkpoint folder: <paramref name="dir"/>, else a complete <c>DIR.new</c> (a
    /// crash before its rename), else <c>DIR.old</c> (a crash between the two renames); null if none.</summary>
    public static string? FindCheckpoint(string dir)
    {
        foreach (var candidate in new[] { dir, dir + ".new", dir + ".old" })
            if (IsComplete(candidate)) return candidate;
        return null;
    }

    /// <summary>Puts the checkpoint <see cref="FindCheckpoint"/> reports at <paramref name="dir"/>, so that
    /// writing the next one never deletes it first.</summary>
    static void Recover(string dir)
    {
        if (IsComplete(dir)) return;
        var found = FindCheckpoint(dir);
        if (found is null) return;
        if (Directory.Exists(dir)) DeleteFolder(dir);
        Directory.Move(found, dir);
        Point("recovered");
    }

    /// <summary>
    /// Replaces a set of files in <paramref name="dir"/> (the best model at a run folder's root: config.json,
    /// vocab.txt, model.safetensors, ...) so that a crash never leaves files of two different models side by
    /// side. <paramref name="write"/> fills a staging folder <c>DIR/.model.new</c>, which is flushed and marked
    /// complete; then its files are renamed into <paramref name="dir"/>, the weights last. When only the weights
    /// change (the usual case during a run) that is one atomic rename. When other files change too, the old
    /// weights are removed first, so a crash in between leaves a folder that is refused for lacking weights,
    /// never one that loads mismatched; the next call (or <see cref="FinishReplaceFiles"/>, which the Trainer
    /// calls when a run starts) completes the renames from the staging folder.
    /// </summary>
    public static void ReplaceFiles(string dir, Action<string> write)
    {
        dir = Path.GetFullPath(dir);
        var stage = Path.Combine(dir, StagingFolderName);
        try
        {
            FinishReplaceFiles(dir);
            if (Directory.Exists(stage)) DeleteFolder(stage);
            Directory.CreateDirectory(stage);
            write(stage);
            Point("staged-written");
            foreach (var f in Directory.EnumerateFiles(stage)) AtomicFile.FlushFileToDisk(f);
            AtomicFile.WriteAllText(Path.Combine(stage, CompleteMarker), "");
            Point("staged");
        }
        catch (Exception e) when (IsIOFailure(e))
        {
            TryDeleteFolder(stage);
            throw new BertSharpException($"{dir}: could not save the model: {Reason(e)}; the model files there are unchanged", e);
        }
        try
        {
            FinishReplaceFiles(dir);
        }
        catch (Exception e) when (IsIOFailure(e))
        {
            throw new BertSharpException($"{dir}: could not put the new model files in place: {Reason(e)}; they wait in {stage} and are moved in by the next save or resume", e) { Parameters = ["resume"] };
        }
    }

    static readonly string[] WeightsFileNames = { ModelFolder.SafeTensorsFileName, ModelFolder.PyTorchFileName };

    /// <summary>Completes a <see cref="ReplaceFiles"/> that a crash interrupted after its staging folder was
    /// complete (renames are repeated safely); removes an incomplete staging folder. Nothing to do otherwise.</summary>
    public static void FinishReplaceFiles(string dir)
    {
        dir = Path.GetFullPath(dir);
        var stage = Path.Combine(dir, StagingFolderName);
        if (!Directory.Exists(stage)) return;
        if (!IsComplete(stage))
        {
            DeleteFolder(stage);
            return;
        }
        var staged = Directory.GetFiles(stage).Where(f => Path.GetFileName(f) != CompleteMarker).ToList();
        var weights = staged.Where(f => WeightsFileNames.Contains(Path.GetFileName(f))).ToList();
        var others = staged.Except(weights).ToList();
        var changed = others.Where(f => !SameContent(f, Path.Combine(dir, Path.GetFileName(f)))).ToList();
        if (changed.Count > 0)
        {
            foreach (var name in WeightsFileNames)
                if (File.Exists(Path.Combine(dir, name))) File.Delete(Path.Combine(dir, name));
            Point("old-weights-removed");
        }
        foreach (var f in changed)
        {
            File.Move(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
            Point("moved " + Path.GetFileName(f));
        }
        foreach (var f in weights)
        {
            File.Move(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
            Point("moved " + Path.GetFileName(f));
        }
        AtomicFile.FlushFolderToDisk(dir);
        DeleteFolder(stage);
        Point("published");
    }

    static bool IsComplete(string dir) => File.Exists(Path.Combine(dir, CompleteMarker));

    /// <summary>Deletes a folder, its completion marker first: a folder half deleted by a crash never looks complete.</summary>
    static void DeleteFolder(string dir)
    {
        var marker = Path.Combine(dir, CompleteMarker);
        if (File.Exists(marker)) File.Delete(marker);
        Directory.Delete(dir, recursive: true);
    }

    static void TryDeleteFolder(string dir)
    {
        try { if (Directory.Exists(dir)) DeleteFolder(dir); }
        catch (Exception e) when (IsIOFailure(e)) { /* best effort: the folder is incomplete, so never used */ }
    }

    static bool SameContent(string a, string b)
    {
        var fa = new FileInfo(a);
        var fb = new FileInfo(b);
        if (!fb.Exists || fa.Length != fb.Length) return false;
        return File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b));
    }

    static bool IsIOFailure(Exception e) => e is IOException or UnauthorizedAccessException or BertSharpException;

    /// <summary>One line; .NET's I/O messages already name the file.</summary>
    static string Reason(Exception e) => e.Message.ReplaceLineEndings(" ").Trim();
}

/// <summary>A run folder taken by this process (see <see cref="RunFolder.Lock"/>); dispose to release it.</summary>
public sealed class RunLock : IDisposable
{
    static readonly Dictionary<string, (FileStream Stream, int Count)> Held = new(StringComparer.Ordinal);
    readonly string _root;
    bool _disposed;

    RunLock(string root) { _root = root; }

    public string Root => _root;

    internal static RunLock Acquire(string root)
    {
        lock (Held)
        {
            if (Held.TryGetValue(root, out var held))
            {
                Held[root] = (held.Stream, held.Count + 1);
                return new RunLock(root);
            }
            var path = Path.Combine(root, RunFolder.LockFileName);
            FileStream stream;
            try
            {
                Directory.CreateDirectory(root);
                // FileShare.None takes an exclusive OS lock (flock on Linux and macOS, a share mode on Windows),
                // which the OS drops when the process ends in any way.
                stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (IsSharingViolation(e))
            {
                throw new BertSharpException($"{root}: the run folder is in use by another run{Owner(root)}; wait for it to end, or choose another output", e) { Parameters = ["output"] };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new BertSharpException($"{path}: could not create the run folder's lock file: {e.Message.ReplaceLineEndings(" ").Trim()}", e);
            }
            try
            {
                AtomicFile.WriteAllText(Path.Combine(root, RunFolder.LockOwnerFileName),
                    $"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z\n");
            }
            catch (BertSharpException) { /* only the refusal message of another run loses detail */ }
            Held[root] = (stream, 1);
            return new RunLock(root);
        }
    }

    static bool IsSharingViolation(IOException e) =>
        OperatingSystem.IsWindows()
            ? (e.HResult & 0xFFFF) is 32 or 33           // ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION
            : e.HResult == 11 || e.HResult == 35         // EWOULDBLOCK (Linux, macOS): flock refused
              || e.Message.Contains("being used by another process", StringComparison.Ordinal);

    /// <summary>" (pid N on HOST since TIME)" from the owner file, when it names a live process.</summary>
    static string Owner(string root)
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(root, RunFolder.LockOwnerFileName)).Trim();
            var parts = text.Split(' ');
            if (parts.Length >= 4 && parts[0] == "pid" && int.TryParse(parts[1], out int pid) && parts[3] == Environment.MachineName)
            {
                try { using var p = Process.GetProcessById(pid); }
                catch (ArgumentException) { return ""; } // stale: written by a process that has ended
            }
            return text.Length is > 0 and < 200 ? $" ({text})" : "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (Held)
        {
            var (stream, count) = Held[_root];
            if (count > 1)
            {
                Held[_root] = (stream, count - 1);
                return;
            }
            Held.Remove(_root);
            try { File.Delete(Path.Combine(_root, RunFolder.LockOwnerFileName)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* stale owner files are ignored */ }
            stream.Dispose();
        }
    }
}
