using System.Security.Cryptography;
using System.Text;
using BertSharp.Checkpoints;
using TorchSharp;
using static BertSharp.Tests.Checkpoints.CheckpointTestUtil;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

public class SafeTensorsFileTests
{
    private static readonly string FixturePath = Fixture("model.safetensors");

    [Fact]
    public void Fixture_is_the_documented_file()
    {
        var sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(FixturePath)));
        Assert.Equal("5b80946382522787255e44176a3692c81430c2300f28cbc5af24a442b84ffc0e", sha);
    }

    [Fact]
    public void Load_reads_the_fixture_names_shapes_and_values()
    {
        var tensors = SafeTensorsFile.Load(FixturePath);
        try
        {
            Assert.Equal(47, tensors.Count);
            var expected = new Dictionary<string, long[]>
            {
                ["bert.embeddings.word_embeddings.weight"] = [1000, 32],
                ["bert.embeddings.position_embeddings.weight"] = [128, 32],
                ["bert.embeddings.token_type_embeddings.weight"] = [2, 32],
                ["bert.embeddings.LayerNorm.weight"] = [32],
                ["bert.embeddings.LayerNorm.bias"] = [32],
                ["bert.embeddings.position_ids"] = [1, 128],
                ["bert.pooler.dense.weight"] = [32, 32],
                ["bert.pooler.dense.bias"] = [32],
                ["cls.predictions.transform.dense.weight"] = [32, 32],
                ["cls.predictions.transform.dense.bias"] = [32],
                ["cls.predictions.transform.LayerNorm.weight"] = [32],
                ["cls.predictions.transform.LayerNorm.bias"] = [32],
                ["cls.predictions.bias"] = [1000],
                ["cls.seq_relationship.weight"] = [2, 32],
                ["cls.seq_relationship.bias"] = [2],
            };
            foreach (var layer in new[] { 0, 1 })
            {
                var p = $"bert.encoder.layer.{layer}.";
                foreach (var m in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
                {
                    expected[p + m + ".weight"] = [32, 32];
                    expected[p + m + ".bias"] = [32];
                }
                expected[p + "attention.output.LayerNorm.weight"] = [32];
                expected[p + "attention.output.LayerNorm.bias"] = [32];
                expected[p + "intermediate.dense.weight"] = [64, 32];
                expected[p + "intermediate.dense.bias"] = [64];
                expected[p + "output.dense.weight"] = [32, 64];
                expected[p + "output.dense.bias"] = [32];
                expected[p + "output.LayerNorm.weight"] = [32];
                expected[p + "output.LayerNorm.bias"] = [32];
            }
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), tensors.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, shape) in expected)
            {
                var t = tensors[name];
                Assert.Equal(shape, t.shape);
                Assert.Equal(name == "bert.embeddings.position_ids" ? ScalarType.Int64 : ScalarType.Float32, t.dtype);
                Assert.True(t.is_contiguous(), name);
                Assert.Equal(DeviceType.CPU, t.device_type);
            }
            // The header lists names in sorted order; Load keeps it.
            Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), tensors.Keys);

            var positions = tensors["bert.embeddings.position_ids"].data<long>().ToArray();
            Assert.Equal(Enumerable.Range(0, 128).Select(i => (long)i), positions);
            // HF zeroes the [PAD] row of the word embeddings; the rest is N(0, 0.2).
            var words = tensors["bert.embeddings.word_embeddings.weight"];
            Assert.All(words[0].data<float>().ToArray(), v => Assert.Equal(0f, v));
            using var rest = words.narrow(0, 1, 999);
            var std = rest.std().item<float>();
            Assert.InRange(std, 0.18f, 0.22f);
        }
        finally { DisposeAll(tensors); }
    }

    [Fact]
    public void Loaded_tensors_do_not_alias_each_other()
    {
        var tensors = SafeTensorsFile.Load(FixturePath);
        try
        {
            // Give every tensor its own fill value; had two of them shared memory, one would show the other's.
            var names = tensors.Keys.ToList();
            for (int i = 0; i < names.Count; i++) tensors[names[i]].fill_(i + 1);
            for (int i = 0; i < names.Count; i++)
                Assert.True(tensors[names[i]].eq(i + 1).all().item<bool>(), names[i]);
        }
        finally { DisposeAll(tensors); }
    }

    [Fact]
    public void Save_of_the_loaded_fixture_is_byte_identical_to_it()
    {
        using var dir = new TempDir();
        var tensors = SafeTensorsFile.Load(FixturePath);
        try
        {
            var output = dir.File("model.safetensors");
            SafeTensorsFile.Save(output, tensors);
            Assert.Equal(File.ReadAllBytes(FixturePath), File.ReadAllBytes(output));

            // Passing the file's own metadata gives the same bytes.
            SafeTensorsFile.Save(output, tensors, SafeTensorsFile.ReadMetadata(FixturePath));
            Assert.Equal(File.ReadAllBytes(FixturePath), File.ReadAllBytes(output));
        }
        finally { DisposeAll(tensors); }
    }

    [Theory]
    [InlineData("sequence-classification", 42, "classifier", 3)]
    [InlineData("token-classification", 40, "classifier", 5)]
    [InlineData("question-answering", 40, "qa_outputs", 2)]
    public void Head_fixtures_load_share_the_base_encoder_and_resave_byte_identically(string head, int count, string prefix, int labels)
    {
        using var dir = new TempDir();
        var baseTensors = SafeTensorsFile.Load(FixturePath);
        var model = SafeTensorsFile.Load(Fixture("heads", head, "model.safetensors"));
        var headOnly = SafeTensorsFile.Load(Fixture("heads", head, "head_only.safetensors"));
        try
        {
            Assert.Equal(count, model.Count);
            foreach (var (name, t) in model.Where(kv => kv.Key.StartsWith("bert.", StringComparison.Ordinal)))
                AssertBitEqual(baseTensors[name], t, name);
            Assert.Equal(new[] { prefix + ".bias", prefix + ".weight" }, headOnly.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(new long[] { labels, 32 }, headOnly[prefix + ".weight"].shape);
            foreach (var (name, t) in headOnly) AssertBitEqual(t, model[name], name);

            foreach (var (file, tensors) in new[] { ("model.safetensors", model), ("head_only.safetensors", headOnly) })
            {
                var output = dir.File(file);
                SafeTensorsFile.Save(output, tensors);
                Assert.Equal(File.ReadAllBytes(Fixture("heads", head, file)), File.ReadAllBytes(output));
            }
        }
        finally
        {
            DisposeAll(baseTensors);
            DisposeAll(model);
            DisposeAll(headOnly);
        }
    }

    [Fact]
    public void ReadMetadata_returns_the_metadata_map()
    {
        var meta = SafeTensorsFile.ReadMetadata(FixturePath);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, meta);
    }

    public static TheoryData<ScalarType> AllDTypes => new()
    {
        ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64, ScalarType.Int64,
        ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    };

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Save_then_Load_is_bit_identical_for_every_dtype(ScalarType dtype)
    {
        using var dir = new TempDir();
        var rng = new Random(1234 + (int)dtype);
        Tensor Make(params long[] shape)
        {
            var t = empty(shape, dtype);
            var bytes = new byte[t.NumberOfElements * t.ElementSize];
            rng.NextBytes(bytes); // every bit pattern, NaN payloads and negative zeros included
            if (dtype == ScalarType.Bool) for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
            t.bytes = bytes;
            return t;
        }
        var tensors = new Dictionary<string, Tensor>
        {
            ["matrix"] = Make(7, 5),
            ["vector"] = Make(11),
            ["scalar"] = Make(),
            ["empty"] = Make(0, 3),
            ["4d"] = Make(2, 3, 1, 4),
        };
        var path = dir.File("all.safetensors");
        SafeTensorsFile.Save(path, tensors);
        var loaded = SafeTensorsFile.Load(path);
        try
        {
            Assert.Equal(tensors.Keys.Order(), loaded.Keys.Order());
            foreach (var (name, t) in tensors) AssertBitEqual(t, loaded[name], name);
        }
        finally
        {
            DisposeAll(tensors);
            DisposeAll(loaded);
        }
    }

    [Fact]
    public void Save_writes_sorted_names_escaped_like_python_and_custom_metadata_first()
    {
        using var dir = new TempDir();
        var tensors = new Dictionary<string, Tensor>
        {
            ["b"] = tensor(new float[] { 1, 2 }),
            ["a\"\\\n\u00e9\U0001F600"] = tensor(new long[] { 3 }),
            ["B"] = tensor(new[] { true, false, true }),
            ["\uffff"] = tensor(new byte[] { 9 }),
        };
        var metadata = new Dictionary<string, string> { ["z"] = "1", ["a"] = "caf\u00e9" };
        var path = dir.File("x.safetensors");
        SafeTensorsFile.Save(path, tensors, metadata);
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, n % 8);
        var header = Encoding.ASCII.GetString(bytes, 8, (int)n);
        // Code-point order: "B" < "a..." < "b" < U+FFFF (ordinal UTF-16 would agree here) and metadata in the given order.
        Assert.Equal(
            "{\"__metadata__\":{\"z\":\"1\",\"a\":\"caf\\u00e9\"}," +
            "\"B\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}," +
            "\"a\\\"\\\\\\n\\u00e9\\ud83d\\ude00\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[3,11]}," +
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[11,19]}," +
            "\"\\uffff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[19,20]}}",
            header.TrimEnd(' '));
        Assert.Equal(8 + n + 20, bytes.Length);

        var loaded = SafeTensorsFile.Load(path);
        try
        {
            foreach (var (name, t) in tensors) AssertBitEqual(t, loaded[name], name);
            Assert.Equal(metadata, SafeTensorsFile.ReadMetadata(path));
        }
        finally
        {
            DisposeAll(tensors);
            DisposeAll(loaded);
        }
    }

    [Fact]
    public void Save_orders_names_by_code_point_not_utf16()
    {
        using var dir = new TempDir();
        // U+1F600 is stored as surrogates (0xD83D...) which sort before U+FFFF in UTF-16 but after it by code point.
        var tensors = new Dictionary<string, Tensor>
        {
            ["\U0001F600"] = tensor(new byte[] { 1 }),
            ["\uffff"] = tensor(new byte[] { 2 }),
        };
        var path = dir.File("order.safetensors");
        SafeTensorsFile.Save(path, tensors);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 2, 1 }, bytes[^2..]);
        DisposeAll(tensors);
    }

    [Fact]
    public void Save_handles_non_contiguous_tensors_and_does_not_change_them()
    {
        using var dir = new TempDir();
        using var m = arange(12, dtype: ScalarType.Float32).reshape(3, 4);
        using var mt = m.t();
        Assert.False(mt.is_contiguous());
        var path = dir.File("t.safetensors");
        SafeTensorsFile.Save(path, new Dictionary<string, Tensor> { ["t"] = mt });
        var loaded = SafeTensorsFile.Load(path);
        AssertBitEqual(mt, loaded["t"], "t");
        Assert.False(mt.is_contiguous());
        DisposeAll(loaded);
    }

    [Fact]
    public void Save_without_metadata_entries_omits_the_metadata_object()
    {
        using var dir = new TempDir();
        using var t = ones(2);
        var path = dir.File("m.safetensors");
        SafeTensorsFile.Save(path, new Dictionary<string, Tensor> { ["x"] = t }, new Dictionary<string, string>());
        var bytes = File.ReadAllBytes(path);
        Assert.StartsWith("{\"x\":", Encoding.ASCII.GetString(bytes, 8, 10));
        Assert.Empty(SafeTensorsFile.ReadMetadata(path));
    }

    [Fact]
    public void Save_rejects_unsupported_dtypes_and_reserved_names()
    {
        using var dir = new TempDir();
        using var c = zeros(2, dtype: ScalarType.ComplexFloat32);
        using var f = zeros(2);
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Save(dir.File("c.safetensors"), new Dictionary<string, Tensor> { ["c"] = c }));
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Save(dir.File("c.safetensors"), new Dictionary<string, Tensor> { ["__metadata__"] = f }));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void Save_that_fails_midway_leaves_the_old_file_and_no_temp_file()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        File.WriteAllText(path, "the old content");
        var tensors = SafeTensorsFile.Load(FixturePath);
        try
        {
            var ex = Assert.Throws<BertSharpException>(() =>
                SafeTensorsFile.Save(path, tensors, null, s => new FailingStream(s, failAfter: 10_000)));
            AssertMessage(ex, path, "could not write", "No space left on device");
            Assert.Equal("the old content", File.ReadAllText(path));
            Assert.Equal(new[] { path }, Directory.GetFileSystemEntries(dir.Path));
        }
        finally { DisposeAll(tensors); }
    }

    [Fact]
    public void Save_replaces_an_existing_file_and_reports_a_missing_folder()
    {
        using var dir = new TempDir();
        using var t = ones(3);
        var tensors = new Dictionary<string, Tensor> { ["x"] = t };
        var path = dir.File("model.safetensors");
        File.WriteAllText(path, "old");
        SafeTensorsFile.Save(path, tensors);
        Assert.Equal(8 + 88 + 12, new FileInfo(path).Length);
        Assert.Equal(new[] { path }, Directory.GetFileSystemEntries(dir.Path));

        var missing = Path.Combine(dir.Path, "no-such-folder", "model.safetensors");
        var ex = Assert.Throws<BertSharpException>(() => SafeTensorsFile.Save(missing, tensors));
        AssertMessage(ex, missing, "could not write", "does not exist");

        var ex2 = Assert.Throws<BertSharpException>(() => SafeTensorsFile.Save(dir.Path, tensors));
        AssertMessage(ex2, dir.Path, "it is a folder");
    }

    [Fact]
    public void Large_tensors_are_moved_in_chunks()
    {
        using var t = arange(1000, dtype: ScalarType.Int32).reshape(10, 100);
        using var ms = new MemoryStream();
        TensorBytes.WriteFrom(ms, t, chunkBytes: 12); // 3 elements per chunk
        Assert.Equal(4000, ms.Length);
        Assert.Equal(Bytes(t), ms.ToArray());
        ms.Position = 0;
        using var back = empty([10, 100], ScalarType.Int32);
        TensorBytes.ReadInto(ms, back, chunkBytes: 7); // 1 element per chunk
        AssertBitEqual(t, back, "chunked");

        using var b = tensor(new byte[] { 0, 1, 1, 0, 2, 1 }).to(ScalarType.Bool);
        b.bytes[4] = 5;
        Assert.Equal((4L, (byte)5), TensorBytes.FirstInvalidBool(b, chunkBytes: 2));
    }

    // ------------------------------------------------------------------ malformed files

    private static string WriteRaw(TempDir dir, string headerJson, int bufferBytes, string name = "bad.safetensors")
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        return WriteRaw(dir, (ulong)header.Length, header, new byte[bufferBytes], name);
    }

    private static string WriteRaw(TempDir dir, ulong declaredLength, byte[] header, byte[] buffer, string name = "bad.safetensors")
    {
        var path = dir.File(name);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes(declaredLength));
        fs.Write(header);
        fs.Write(buffer);
        return path;
    }

    private static void AssertLoadFails(string path, params string[] fragments)
    {
        var ex = Assert.ThrowsAny<Exception>(() => SafeTensorsFile.Load(path));
        AssertMessage(ex, path, fragments);
        var ex2 = Assert.ThrowsAny<Exception>(() => SafeTensorsFile.ReadMetadata(path));
        Assert.Equal(ex.Message, ex2.Message);
    }

    [Fact]
    public void Missing_file_is_reported()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<BertSharpException>(() => SafeTensorsFile.Load(dir.File("nope.safetensors")));
        AssertMessage(ex, dir.File("nope.safetensors"), "file not found");
    }

    [Fact]
    public void File_shorter_than_8_bytes_is_refused()
    {
        using var dir = new TempDir();
        var path = dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        AssertLoadFails(path, "5 bytes", "too short");
    }

    [Fact]
    public void Header_longer_than_the_file_is_refused()
    {
        using var dir = new TempDir();
        var path = WriteRaw(dir, 1048576, Encoding.UTF8.GetBytes("{}"), new byte[2038], "model.safetensors");
        AssertLoadFails(path, "header claims 1048576 bytes but the file has 2040 after the header");
    }

    [Fact]
    public void Absurd_header_length_is_refused_without_allocating_it()
    {
        using var dir = new TempDir();
        var path = WriteRaw(dir, 1UL << 62, Encoding.UTF8.GetBytes("{}"), []);
        AssertLoadFails(path, "header length 4611686018427387904 is absurd");
    }

    [Fact]
    public void Invalid_utf8_header_is_refused()
    {
        using var dir = new TempDir();
        var header = Encoding.UTF8.GetBytes("{\"a\xff\":{}}");
        header[3] = 0xff;
        var path = WriteRaw(dir, (ulong)header.Length, header, []);
        AssertLoadFails(path, "not valid UTF-8");
    }

    [Theory]
    [InlineData("{\"a\":", "not valid JSON")]
    [InlineData("{} trailing", "not valid JSON")]
    [InlineData("[1,2]", "header is a JSON array, not an object")]
    [InlineData("\"hello\"", "header is a JSON string, not an object")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "tensor 'a' appears twice")]
    [InlineData("{\"__metadata__\":{},\"__metadata__\":{}}", "'__metadata__' appears twice")]
    [InlineData("{\"__metadata__\":[]}", "'__metadata__' is a JSON array")]
    [InlineData("{\"__metadata__\":{\"format\":1}}", "'__metadata__' entry 'format' is a JSON number, not a string")]
    [InlineData("{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "tensor 'a': unknown dtype 'F8'")]
    [InlineData("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", "tensor 'a': dtype is a JSON number")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,8]}}", "tensor 'a': dimension 1 of shape [2,-3] is negative")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", "tensor 'a': shape [4294967296,4294967296] has more elements than a 64-bit count holds")]
    [InlineData("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]}}", "needs more bytes than a 64-bit count holds")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", "shape element 0 (1.5) is not an integer")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e400],\"data_offsets\":[0,8]}}", "shape element 0 (1e400) is not an integer")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":\"3\",\"data_offsets\":[0,8]}}", "shape is a JSON string")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "tensor 'a': data_offsets [0,8] give 8 bytes but shape [3] of F32 needs 12")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}}", "tensor 'a': data_offsets [8,20] lie outside the 16-byte data buffer")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[-4,8]}}", "are not a valid range")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", "are not a valid range")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "data_offsets has 3 numbers")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "data_offsets has 1 numbers, expected 2")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "tensors 'a' [0,8] and 'b' [4,12] overlap")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "tensors 'a' [0,8] and 'b' [0,8] overlap")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "tensor 'a' lacks data_offsets")]
    [InlineData("{\"a\":{}}", "tensor 'a' lacks dtype and shape and data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", "tensor 'a' has an unknown field 'extra'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'a': 'dtype' appears twice")]
    [InlineData("{\"a\":[1]}", "tensor 'a' is described by a JSON array")]
    [InlineData("{\"a\\nb\":[1]}", "tensor 'a\\u000ab'")]
    public void Malformed_headers_are_refused(string header, string expected)
    {
        using var dir = new TempDir();
        var path = WriteRaw(dir, header, 16);
        AssertLoadFails(path, expected);
    }

    [Fact]
    public void Too_many_dimensions_are_refused()
    {
        using var dir = new TempDir();
        var shape = string.Join(",", Enumerable.Repeat("1", 65));
        var path = WriteRaw(dir, $"{{\"a\":{{\"dtype\":\"U8\",\"shape\":[{shape}],\"data_offsets\":[0,1]}}}}", 1);
        AssertLoadFails(path, "shape has 65 numbers (at most 64 allowed)");
    }

    [Fact]
    public void Invalid_bool_bytes_are_refused()
    {
        using var dir = new TempDir();
        var header = Encoding.UTF8.GetBytes("{\"flags\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}");
        var path = WriteRaw(dir, (ulong)header.Length, header, [1, 0, 2]);
        var ex = Assert.Throws<BertSharpException>(() => SafeTensorsFile.Load(path));
        AssertMessage(ex, path, "tensor 'flags': BOOL data has byte value 2 at element 2");
    }

    [Fact]
    public void Buffer_not_fully_covered_and_zero_length_tensors_are_accepted()
    {
        using var dir = new TempDir();
        var header = Encoding.UTF8.GetBytes(
            "{\"b\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[6,10]}, \"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[6,6]}," +
            " \"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[12,13]}}   ");
        var path = WriteRaw(dir, (ulong)header.Length, header, [9, 9, 9, 9, 9, 9, 1, 0, 0xff, 0xff, 9, 9, 42, 9, 9]);
        var t = SafeTensorsFile.Load(path);
        try
        {
            Assert.Equal(new[] { "b", "e", "s" }, t.Keys);
            Assert.Equal(new short[] { 1, -1 }, t["b"].data<short>().ToArray());
            Assert.Equal(new long[] { 0, 5 }, t["e"].shape);
            Assert.Empty(t["s"].shape);
            Assert.Equal((byte)42, t["s"].item<byte>());
        }
        finally { DisposeAll(t); }
    }

    [Fact]
    public void Truncated_fixture_is_refused()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(FixturePath);
        var path = dir.File("model.safetensors");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        AssertLoadFails(path, "lie outside the");
        File.WriteAllBytes(path, bytes[..100]);
        AssertLoadFails(path, "header claims 4992 bytes but the file has 92 after the header");
    }

    /// <summary>Passes writes through until <c>failAfter</c> bytes, then fails like a full disk.</summary>
    private sealed class FailingStream(Stream inner, long failAfter) : Stream
    {
        private long _written;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_written + buffer.Length > failAfter) throw new IOException("No space left on device");
            inner.Write(buffer);
            _written += buffer.Length;
        }
    }
}
