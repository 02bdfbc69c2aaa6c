namespace BertSharp.Tokenization;

/// <summary>
/// One encoded sequence (or pair), unpadded: <c>[CLS] A [SEP]</c> or <c>[CLS] A [SEP] B [SEP]</c>.
/// TokenTypeIds are 0 up to and including the first [SEP], then 1. AttentionMask is all ones (padding is the
/// batcher's job). <see cref="WordIds"/> is set by <see cref="BertTokenizer.EncodeWords"/> only: for each token
/// the index of the input word it came from, -1 for special tokens.
/// </summary>
public sealed record BertEncoding(string[] Tokens, int[] InputIds, int[] TokenTypeIds, int[] AttentionMask)
{
    public int[]? WordIds { get; init; }

    public int Length => InputIds.Length;
}

/// <summary>A WordPiece token with its vocabulary id and its [Start, End) span in UTF-16 units of the original text.</summary>
public readonly record struct TokenSpan(string Token, int Id, int Start, int End)
{
    public int Length => End - Start;
}
