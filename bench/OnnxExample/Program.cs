// A folder written by `bert export onnx runs/snli --output runs/snli-onnx`, classified with ONNX Runtime alone.
using BertSharp.Export;
using BertSharp.Tokenization;
using Microsoft.ML.OnnxRuntime;

string folder = args[0];
var info = OnnxModelInfo.Load(folder);                     // onnx_config.json: labels, max_seq_length, outputs
var tokenizer = BertTokenizer.FromFolder(folder);          // vocab.txt + tokenizer_config.json
using var session = new InferenceSession(Path.Combine(folder, "model.onnx"));

var enc = tokenizer.Encode(args[1], args.Length > 2 ? args[2] : null, info.MaxSeqLength);   // [CLS] a [SEP] (b [SEP])
long[] Longs(int[] v) => v.Select(x => (long)x).ToArray();
long[] shape = [1, enc.Length];                            // [batch, sequence]: pad a batch to its longest, mask 0
using var ids = OrtValue.CreateTensorValueFromMemory(Longs(enc.InputIds), shape);
using var mask = OrtValue.CreateTensorValueFromMemory(Longs(enc.AttentionMask), shape);
using var types = OrtValue.CreateTensorValueFromMemory(Longs(enc.TokenTypeIds), shape);
using var outputs = session.Run(new RunOptions(), ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["probabilities"]);

var p = outputs[0].GetTensorDataAsSpan<float>().ToArray();  // softmax over info.Labels
int best = Array.IndexOf(p, p.Max());
Console.WriteLine($"{info.Labels[best]} {p[best]:F3}");
