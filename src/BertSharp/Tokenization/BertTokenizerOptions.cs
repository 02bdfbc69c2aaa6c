namespace BertSharp.Tokenization;

/// <summary>
/// Settings of a <see cref="BertTokenizer"/>, named after HuggingFace's <c>BertTokenizer</c> arguments
/// (tokenizer_config.json: do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length, *_token).
/// </summary>
public sealed record BertTokenizerOptions
{
    /// <summary>do_lower_case: lower-case the text (special tokens excepted). HF default: true.</summary>
    public bool LowerCase { get; init; } = true;

    /// <summary>strip_accents: NFD + drop non-spacing marks. <c>null</c> (HF default) follows <see cref="LowerCase"/>.</summary>
    public bool? StripAccents { get; init; }

    /// <summary>tokenize_chinese_chars: every CJK ideograph becomes its own word. HF default: true.</summary>
    public bool TokenizeChineseChars { get; init; } = true;

    /// <summary>A word longer than this (in Unicode code points) becomes [UNK]. HF: 100.</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;

    /// <summary>model_max_length: default truncation length of <c>Encode</c>; null = 512.</summary>
    public int? ModelMaxLength { get; init; }

    public string UnkToken { get; init; } = "[UNK]";
    public string SepToken { get; init; } = "[SEP]";
    public string PadToken { get; init; } = "[PAD]";
    public string ClsToken { get; init; } = "[CLS]";
    public string MaskToken { get; init; } = "[MASK]";

    /// <summary>Whether accents are stripped: HF strips when strip_accents is true, or when it is unset and lower-casing is on.</summary>
    public bool EffectiveStripAccents => StripAccents ?? LowerCase;
}
