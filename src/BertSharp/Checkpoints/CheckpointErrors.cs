using System.Globalization;
using System.Text;

namespace BertSharp.Checkpoints;

/// <summary>One-line messages for malformed checkpoint files: "PATH: problem".</summary>
internal static class CheckpointErrors
{
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
