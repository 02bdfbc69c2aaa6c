using System.Diagnostics;
using BertSharp.Training;

namespace BertSharp.Tests.Reliability;

/// <summary>A run folder is held by one process at a time (an OS lock on its .lock file); a second run is
/// refused with a one-line error naming the folder and the holder, before it writes anything.</summary>
public class RunLockTests
{
    static bool HeldByAnyone(string root)
    {
        try { using var fs = new FileStream(Path.Combine(root, RunFolder.LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); return false; }
        catch (IOException) { return true; }
    }

    [Fact]
    public void The_lock_is_counted_within_a_process_and_released_on_the_last_dispose()
    {
        var run = new RunFolder(Path.Combine(TestPaths.TempDir("lock"), "run"));
        var a = run.Lock();               // creates the folder
        var b = run.Lock();               // the Trainer takes it again inside a command that holds it
        Assert.True(HeldByAnyone(run.Root));
        Assert.Contains($"pid {Environment.ProcessId} ", File.ReadAllText(Path.Combine(run.Root, ".lock.owner")));
        b.Dispose();
        Assert.True(HeldByAnyone(run.Root));
        a.Dispose();
        a.Dispose();                      // idempotent
        Assert.False(HeldByAnyone(run.Root));
        Assert.False(File.Exists(Path.Combine(run.Root, ".lock.owner")));
        using var again = run.Lock();     // a released (or crashed) holder never blocks the next run
    }

    [Fact]
    public void A_folder_held_by_another_process_is_refused_naming_the_folder_and_the_process()
    {
        var root = Path.Combine(TestPaths.TempDir("lock-held"), "run");
        Directory.CreateDirectory(root);
        // Another process, as the OS sees it: an exclusive lock on a separate open of the file (flock locks
        // conflict between opens even within one process), and the owner line it writes.
        using var other = new FileStream(Path.Combine(root, RunFolder.LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        string owner = $"pid {Environment.ProcessId} on {Environment.MachineName} since 2025-01-02 03:04:05Z";
        File.WriteAllText(Path.Combine(root, ".lock.owner"), owner + "\n");

        var e = Assert.Throws<BertSharpException>(() => new RunFolder(root).Lock());
        Assert.Equal($"{root}: the run folder is in use by another run ({owner}); wait for it to end, or choose another output", e.Message);

        // The CLI refuses before writing anything into the folder (args.json, metrics, checkpoints).
        var err = new StringWriter();
        int code = BertSharp.Cli.Cli.Run(new[] { "pretrain", "--output", root, "--corpus", "unused.txt" }, new StringWriter(), err);
        Assert.Equal(1, code);
        Assert.Equal($"error: {root}: the run folder is in use by another run ({owner}); wait for it to end, or choose another --output", err.ToString().Trim());
        Assert.Equal(new[] { ".lock", ".lock.owner" }, Directory.GetFileSystemEntries(root).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void An_owner_line_left_by_a_process_that_has_ended_is_not_shown()
    {
        var root = Path.Combine(TestPaths.TempDir("lock-stale"), "run");
        Directory.CreateDirectory(root);
        using var ended = Process.Start(OperatingSystem.IsWindows() ? new ProcessStartInfo("cmd", "/c exit") : new ProcessStartInfo("true"))!;
        ended.WaitForExit();
        using var other = new FileStream(Path.Combine(root, RunFolder.LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        File.WriteAllText(Path.Combine(root, ".lock.owner"), $"pid {ended.Id} on {Environment.MachineName} since 2025-01-02 03:04:05Z\n");
        var e = Assert.Throws<BertSharpException>(() => new RunFolder(root).Lock());
        Assert.Equal($"{root}: the run folder is in use by another run; wait for it to end, or choose another output", e.Message);
    }
}
