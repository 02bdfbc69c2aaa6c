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
    internal RunLock Lock() => RunLock.Acquire(Root);

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
            foreach (var f in Directory.EnumerateFiles(stage, "*", SearchOption.AllDirectories)) AtomicFile.FlushFileToDisk(f);
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
        // Files in sub-folders too (a sentence encoder's 1_Pooling/config.json), under their relative paths.
        string Target(string f) => Path.Combine(dir, Path.GetRelativePath(stage, f));
        foreach (var sub in Directory.GetDirectories(stage, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(Target(sub));
        var staged = Directory.GetFiles(stage, "*", SearchOption.AllDirectories).Where(f => f != Path.Combine(stage, CompleteMarker)).ToList();
        var weights = staged.Where(f => Path.GetDirectoryName(f) == stage && WeightsFileNames.Contains(Path.GetFileName(f))).ToList();
        var others = staged.Except(weights).ToList();
        var changed = others.Where(f => !SameContent(f, Target(f))).ToList();
        if (changed.Count > 0)
        {
            foreach (var name in WeightsFileNames)
                if (File.Exists(Path.Combine(dir, name))) File.Delete(Path.Combine(dir, name));
            Point("old-weights-removed");
        }
        foreach (var f in changed)
        {
            File.Move(f, Target(f), overwrite: true);
            Point("moved " + Path.GetRelativePath(stage, f));
        }
        foreach (var f in weights)
        {
            File.Move(f, Target(f), overwrite: true);
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
