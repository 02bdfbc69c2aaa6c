namespace BertSharp.Data;

/// <summary>
/// One pre-training document: the sentences of one article (WikiText), one blank-line-separated block (plain
/// text) or one JSON object (JSONL), in order. Next-sentence pairs are drawn within a document.
/// </summary>
/// <param name="Source"><c>path:line</c> of the document's first line, for error messages.</param>
/// <param name="Sentences">Trimmed, non-empty sentences; readers never yield a document without any.</param>
public sealed record Document(string Source, IReadOnlyList<string> Sentences);
