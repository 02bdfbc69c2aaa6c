using BertSharp.Data;

namespace BertSharp.Tasks;

/// <summary>A part of a dataset that comes with a built-in split (the NLTK treebank sample); other files are read whole.</summary>
public enum DataSplit { All, Train, Dev, Test }

/// <summary>How to read a task's data file: its format and columns (each task documents its defaults).</summary>
public sealed record DataFileOptions
{
    /// <summary>Format name (task-specific: tsv, csv, jsonl, stsb, ptb, conll); null = from the file name/content.</summary>
    public string? Format { get; init; }
    /// <summary>Column of the text (or of the words, for JSONL tagging): a header name or a 0-based index.</summary>
    public string? TextColumn { get; init; }
    /// <summary>Column of the second text of a pair.</summary>
    public string? PairColumn { get; init; }
    /// <summary>Column of the label (or score, or tags for JSONL tagging).</summary>
    public string? LabelColumn { get; init; }
    /// <summary>CoNLL files: 0-based column of the tag (default: the last column); the word is column 0.</summary>
    public int? TagColumn { get; init; }
    /// <summary>Classification: each example has a set of labels, none to all of them (multi-label classification).
    /// The label column holds them separated by commas (an empty cell: no label); in JSONL it may also be a list.</summary>
    public bool MultiLabel { get; init; }
    /// <summary>TSV/CSV files have no header row (columns are then given by index).</summary>
    public bool NoHeader { get; init; }
    /// <summary>Read at most this many examples (the first ones).</summary>
    public int? MaxExamples { get; init; }
    /// <summary>For a dataset with a built-in split, which part to read.</summary>
    public DataSplit Split { get; init; } = DataSplit.All;
    /// <summary>SQuAD files: split by article, the first N articles being the train part and the rest the others.</summary>
    public int? SplitArticles { get; init; }
}

/// <summary>Examples read from a file, with notes for the user (e.g. "dropped 4 examples with gold_label '-'").
/// <see cref="HasBuiltInSplit"/>: the file also holds dev and test parts (read them with <see cref="DataSplit"/>).</summary>
public sealed record ExampleSet<T>(IReadOnlyList<T> Examples, IReadOnlyList<string> Notes, bool HasBuiltInSplit = false);

/// <summary>Errors about the columns of <see cref="DataFileOptions"/>, naming the option's parameter.</summary>
internal static class ColumnErrors
{
    /// <summary>The same error, naming <paramref name="parameters"/>.</summary>
    public static BertSharpException Naming(this BertSharpException e, params string[] parameters) => new(e.Message, e) { Parameters = parameters };

    /// <summary><see cref="TableReader.ResolveColumn"/>, its errors naming <paramref name="parameter"/>.</summary>
    public static int Resolve(this TableReader table, ColumnRef column, string parameter)
    {
        try { return table.ResolveColumn(column, parameter); }
        catch (BertSharpException e) { throw e.Naming(parameter); }
    }
}
