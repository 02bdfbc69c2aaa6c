using System.Globalization;
using System.Text;

namespace BertSharp.Checkpoints;

/// <summary>Shared by the checkpoint readers: opening a file, and one-line messages "PATH: problem".</summary>
internal static class CheckpointIO
{
    /// <summary>Opens <paramref name="path"/> for reading; failures become a <see cref="BertSharpException"/>.</summary>
    internal static FileStream OpenRead(string path, FileOptions options = FileOptions.None)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, options);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => Error(path, "file not found", ex),
                UnauthorizedAccessException => Error(path, "permission denied", ex),
                _ => Error(path, $"could not open: {TensorBytes.OneLine(ex.Message)}", ex),
            };
        }
    }

    internal static BertSharpException Error(string path, string problem, Exception? inner = null) =>
        inner is null ? new BertSharpException($"{path}: {problem}") : new BertSharpException($"{path}: {problem}", inner);

    /// <summary>A name from the file, for a one-line message: quoted, control characters escaped,
    /// long names shortened.</summary>
    internal static string Quote(string name)
    {
        const int max = 200;
        var sb = new StringBuilder("'");
        foreach (char c in name.Length > max ? name[..max] : name)
        {
            if (char.IsControl(c)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        if (name.Length > max) sb.Append("...");
        return sb.Append('\'').ToString();
    }
}
