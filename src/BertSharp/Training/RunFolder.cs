using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Training;

/// <summary>
/// The layout of a run folder (ARCHITECTURE.md): the best model in HF layout at the root, the full training
/// state under checkpoints/last, args.json, metrics, TensorBoard events and plots.
/// </summary>
public sealed class RunFolder
{
    public RunFolder(string root) { Root = Path.GetFullPath(root); }

    public string Root { get; }
    public string Checkpoints => Path.Combine(Root, "checkpoints");
    public string LastCheckpoint => Path.Combine(Checkpoints, "last");
    public string Plots => Path.Combine(Root, "plots");
    public string ArgsFile => Path.Combine(Root, "args.json");

    public void WriteArgs(IReadOnlyDictionary<string, object?> args)
    {
        var o = new JsonObject();
        foreach (var (k, v) in args) o[k] = JsonSerializer.SerializeToNode(v);
        Directory.CreateDirectory(Root);
        AtomicFile.WriteAllText(ArgsFile, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// Replaces a checkpoint folder as a whole: <paramref name="write"/> fills a fresh sibling folder, which then
    /// takes the old one's place by renames. A crash at any point leaves a complete folder at
    /// <paramref name="dir"/> or at its ".old" sibling, which <see cref="FindCheckpoint"/> falls back to.
    /// </summary>
    public static void ReplaceFolder(string dir, Action<string> write)
    {
        var fresh = dir + ".new";
        var old = dir + ".old";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        Directory.CreateDirectory(fresh);
        write(fresh);
        File.WriteAllText(Path.Combine(fresh, CompleteMarker), "");
        if (Directory.Exists(dir))
        {
            if (Directory.Exists(old)) Directory.Delete(old, true);
            Directory.Move(dir, old);
        }
        Directory.Move(fresh, dir);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }

    const string CompleteMarker = ".complete";

    /// <summary>The last complete checkpoint folder, or null.</summary>
    public static string? FindCheckpoint(string dir)
    {
        foreach (var candidate in new[] { dir, dir + ".old" })
            if (File.Exists(Path.Combine(candidate, CompleteMarker))) return candidate;
        return null;
    }
}
