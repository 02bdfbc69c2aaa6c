using System.Diagnostics;

namespace BertSharp.Training;

/// <summary>A run folder taken by this process (see <see cref="RunFolder.Lock"/>); dispose to release it.</summary>
internal sealed class RunLock : IDisposable
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
