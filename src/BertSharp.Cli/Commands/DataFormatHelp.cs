namespace BertSharp.Cli.Commands;

/// <summary>The data formats of the task commands, as their --help states them.</summary>
public static class DataFormatHelp
{
    public const string ClassificationColumns =
        "Default columns: the first of the pairs sentence1/sentence2, premise/hypothesis, question1/question2, " +
        "question/sentence, #1 String/#2 String, text_a/text_b, text/pair present in the header (or JSON fields), " +
        "else one text from text, sentence, review or content; the label from label, gold_label, Quality, " +
        "is_duplicate or labels. With --text-column, a pair comes only from --pair-column.";

    public const string ClassificationFormats =
        "Formats (by extension unless --format): .jsonl/.jsonl.gz (SNLI as distributed), .tsv (GLUE-style, header " +
        "row, no quoting), .csv (header row, RFC 4180 quoting; a .csv whose first line has tabs and no commas is " +
        "read as TSV). Examples whose gold_label is '-' (SNLI: no annotator majority) are dropped and counted.";

    public const string MultiLabel =
        "Multi-label (--multi-label): the label column holds an example's labels separated by commas (\"sports,politics\"; " +
        "spaces around them are ignored; an empty cell is an example with no label; in CSV quote a cell holding commas), or " +
        "in JSONL a list ([\"sports\", \"politics\"], [] for none) or such a string. config.json gets problem_type " +
        "multi_label_classification (a transformers folder with it predicts here as multi-label). Metrics: micro-F1 (selects " +
        "the best model), macro-F1, subset accuracy (the exact set), per-label precision/recall/F1. The decision threshold " +
        "(the probability from which a label is predicted) is the best of 0.05, 0.10 … 0.95 by micro-F1 on --dev, saved " +
        "with the model (config.json bertsharp_threshold) and used by predict, evaluate, serve and the ONNX export.";

    public const string ClassWeights =
        "Class weights (--class-weights auto|FILE): auto weighs each class n_samples / (n_classes × count) in the " +
        "cross-entropy (scikit-learn's balanced); with --multi-label, each label's positives count negatives / positives " +
        "times (BCEWithLogitsLoss pos_weight). FILE: one 'label<TAB>weight' line per label (blank and # lines skipped; " +
        "labels not named weigh 1). The weights are printed at the start and recorded in args.json, which --resume uses.";

    public const string LongInputs =
        "Long inputs: a text (or pair) longer than --max-seq-length is read in overlapping windows, [CLS] tokens [SEP], " +
        "--doc-stride tokens apart (default: half the window), the last one ending at the input's last token; a pair slides over its longer text and repeats the other in " +
        "each window, whole when it fits in half the window, else cut to that half. The windows' logits (similarity: scores) " +
        "are combined, by their mean or --window-aggregation max, into the input's one prediction: in training (the loss is " +
        "that of the combined logits; a batch holds --batch-size inputs with all their windows), evaluation and prediction, " +
        "with one line per input in predictions_*.jsonl. --truncate cuts long inputs to the window instead (HF's longest_first). " +
        "How many inputs were windowed (into how many windows) or cut (by how many tokens) is printed at the start and at " +
        "the end, and recorded in results.json; the setting is saved with the model (config.json bertsharp_long_inputs) and " +
        "used by predict, evaluate and serve (a folder without it cuts, as it was fine-tuned).";

    public const string SimilarityFormats =
        "Formats (by file name and content unless --format): stsb — the STS Benchmark original sts-*.csv files " +
        "(tab-separated, no header, not quote-aware: score in the 5th column, the sentences in the 6th and 7th); " +
        "tsv (header row, no quoting), csv (header row, RFC 4180 quoting), jsonl (.jsonl/.jsonl.gz). Default " +
        "columns: sentence1/sentence2, sentence_A/sentence_B, text_a/text_b or text/pair; the score from score, " +
        "label, similarity, relatedness_score or similarity_score.";

    public const string EmbeddingData =
        "Data (one of three shapes, found by content): scored pairs — an STS Benchmark sts-*.csv, or a table with two texts " +
        "and a numeric score (as for similarity), trained with CoSENT (--loss cosent) or the cosine MSE (--loss cosine); " +
        "(anchor, positive[, negative]) — a table with columns anchor/positive[/negative] (or query/positive, sentence1/sentence2 " +
        "without a label), trained with in-batch negatives (MultipleNegativesRankingLoss, scale 20); NLI — SNLI's JSONL or a " +
        "premise/hypothesis/label table: each entailment pair becomes (premise, entailment, a contradiction of the same premise) " +
        "or (premise, entailment), neutral pairs are unused, trained with in-batch negatives.";

    public const string Treebank =
        "The NLTK treebank sample has no official split; BertSharp splits it by file order: wsj_0001–wsj_0159 " +
        "train (3,396 sentences), wsj_0160–wsj_0179 dev (273), wsj_0180–wsj_0199 test (245). Given as --train, " +
        "treebank.zip's dev and test parts are used unless --dev/--test are given; given as --dev or --test, that part is read.";

    public const string TaggingFormats =
        "Formats (--format, else by name): ptb — treebank.zip, a folder or .mrg files (the combined parse trees; " +
        "-NONE- trace leaves dropped), or .pos files (word/TAG, a sentence ends at a '.' tag); conll — one word per " +
        "line, columns separated by spaces or tabs, the word in column 0 and the tag in --tag-column (0-based, " +
        "default the last), a blank line between sentences, -DOCSTART- lines skipped; a zip holding train.txt and " +
        "test.txt in these columns (conll2000.zip) is read as train (train.txt but its last tenth), dev (that last " +
        "tenth) and test (test.txt) parts, like treebank.zip; jsonl — one object per line " +
        "with a list of words (tokens, words) and a list of tags (tags, ner_tags, pos_tags, chunk_tags, labels), " +
        "or the fields named by --text-column/--label-column.";
}
