using System.Diagnostics;

namespace BertSharp.Tests.Reliability;

/// <summary>Real file-system faults for tests running as root on Linux: a small tmpfs that fills up
/// (ENOSPC), and the immutable attribute (chattr +i) that refuses changes even to root (EPERM). Where the
/// environment cannot provide them, the tests that need them are skipped with the reason.</summary>
internal static class FileSystemFaults
{
    public static readonly Lazy<string?> TmpfsUnavailable = new(() => Probe(dir =>
    {
        Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir);
        Run("umount", dir);
    }, "cannot mount a tmpfs (needs Linux, root and CAP_SYS_ADMIN)"));

    public static readonly Lazy<string?> ChattrUnavailable = new(() => Probe(dir =>
    {
        Run("chattr", "+i", dir);
        bool refused = false;
        try { File.WriteAllText(Path.Combine(dir, "x"), ""); }
        catch (UnauthorizedAccessException) { refused = true; }
        catch (IOException) { refused = true; }
        Run("chattr", "-i", dir);
        if (!refused) throw new InvalidOperationException("chattr +i did not stop a write");
    }, "cannot make a folder immutable with chattr +i (needs Linux, root with CAP_LINUX_IMMUTABLE and a file system that supports it)"));

    static string? Probe(Action<string> tryIt, string reason)
    {
        if (!OperatingSystem.IsLinux()) return reason + ": not Linux";
        var dir = TestPaths.TempDir("probe");
        try { tryIt(dir); return null; }
        catch (Exception e) { return $"{reason}: {e.Message}"; }
    }

    public static void Run(params string[] args)
    {
        var psi = new ProcessStartInfo(args[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args.Skip(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {args[0]}");
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{string.Join(' ', args)} failed ({p.ExitCode}): {err.Trim()}");
    }

    /// <summary>A tmpfs of <paramref name="bytes"/> mounted on a fresh folder; unmounted on dispose.</summary>
    public sealed class Tmpfs : IDisposable
    {
        public string Path { get; } = TestPaths.TempDir("tmpfs");
        public Tmpfs(long bytes) => Run("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", Path);
        public void Dispose()
        {
            try { Run("umount", "-l", Path); } catch (InvalidOperationException) { }
        }
    }

    /// <summary>Fills the file system holding <paramref name="dir"/> until only about <paramref name="leave"/>
    /// bytes are free; returns the filler file (delete it to free the space).</summary>
    public static string Fill(string dir, long leave)
    {
        var path = System.IO.Path.Combine(dir, "filler.bin");
        var chunk = new byte[1 << 20];
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1))
        {
            try { while (true) { fs.Write(chunk); fs.Flush(); } }
            catch (IOException) { }
            fs.SetLength(Math.Max(0, fs.Length - leave));
        }
        return path;
    }
}

public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute() { if (FileSystemFaults.TmpfsUnavailable.Value is string why) Skip = why; }
}

public sealed class ChattrFactAttribute : FactAttribute
{
    public ChattrFactAttribute() { if (FileSystemFaults.ChattrUnavailable.Value is string why) Skip = why; }
}

/// <summary>A fact that needs Unix signals (SIGSTOP/SIGCONT through the kill command).</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute() { if (OperatingSystem.IsWindows()) Skip = "needs Unix signals (kill -STOP / -CONT)"; }
}
