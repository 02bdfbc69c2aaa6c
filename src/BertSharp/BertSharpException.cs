namespace BertSharp;

/// <summary>
/// An error caused by the user's input (a file, a folder, an option), with a one-line message that names
/// the file, the line or field where known, and the problem. The CLI prints only the message (no stack trace
/// unless --verbose); anything else that escapes is a bug.
/// </summary>
public class BertSharpException : Exception
{
    public BertSharpException(string message) : base(message) { }
    public BertSharpException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The parameters the message names, as the library spells them (e.g. "batchSize"); a front end may show its own names for them.</summary>
    public IReadOnlyList<string> Parameters { get; init; } = [];
}
