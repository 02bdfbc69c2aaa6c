namespace BertSharp.Tests.Tokenization;

/// <summary>A small in-memory WordPiece vocabulary: specials, ASCII punctuation, letters, ##letters, a few words.</summary>
internal static class SmallVocab
{
    public static List<string> With(params string[] extra)
    {
        var v = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        for (char c = '!'; c <= '~'; c++)
            if (!char.IsLetterOrDigit(c)) v.Add(c.ToString());
        for (char c = 'a'; c <= 'z'; c++) v.Add(c.ToString());
        for (char c = 'a'; c <= 'z'; c++) v.Add("##" + c);
        v.AddRange(new[] { "hello", "world", "un", "##aff", "##able", "the", "lazy", "dog", "naive", "cafe" });
        foreach (var e in extra)
            if (!v.Contains(e)) v.Add(e);
        return v;
    }
}
