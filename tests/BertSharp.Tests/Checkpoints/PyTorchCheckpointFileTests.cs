using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using BertSharp.Checkpoints;
using TorchSharp;
using static BertSharp.Tests.Checkpoints.CheckpointTestUtil;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

public class PyTorchCheckpointFileTests
{
    private static readonly string FixturePath = Fixture("pytorch_model.bin");

    [Fact]
    public void Fixture_is_the_documented_file()
    {
        var sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(FixturePath)));
        Assert.Equal("2b7a6874b40496377ce3a122d003322756f5a652c82b8ef86802da4ce12946bc", sha);
    }

    [Fact]
    public void Load_reads_the_fixture_and_matches_the_safetensors_file_bit_for_bit()
    {
        var pt = PyTorchCheckpointFile.Load(FixturePath);
        var st = SafeTensorsFile.Load(Fixture("model.safetensors"));
        try
        {
            Assert.Equal(49, pt.Count);
            Assert.Equal("bert.embeddings.position_ids", pt.Keys.First()); // file order is kept

            var positions = pt["bert.embeddings.position_ids"];
            Assert.Equal(ScalarType.Int64, positions.dtype);
            Assert.Equal(new long[] { 1, 128 }, positions.shape);
            Assert.Equal(Enumerable.Range(0, 128).Select(i => (long)i), positions.data<long>().ToArray());

            // Every safetensors tensor is in the .bin with the same bits; the .bin has the two tied extras.
            foreach (var (name, t) in st) AssertBitEqual(t, pt[name], name);
            Assert.Equal(
                new[] { "cls.predictions.decoder.bias", "cls.predictions.decoder.weight" },
                pt.Keys.Except(st.Keys).Order(StringComparer.Ordinal));
            AssertBitEqual(st["bert.embeddings.word_embeddings.weight"], pt["cls.predictions.decoder.weight"], "decoder.weight");
            AssertBitEqual(st["cls.predictions.bias"], pt["cls.predictions.decoder.bias"], "decoder.bias");
            Assert.All(pt.Values, t => Assert.True(t.is_contiguous()));
        }
        finally
        {
            DisposeAll(pt);
            DisposeAll(st);
        }
    }

    [Fact]
    public void Tied_entries_share_memory_as_with_torch_load()
    {
        var pt = PyTorchCheckpointFile.Load(FixturePath);
        try
        {
            pt["bert.embeddings.word_embeddings.weight"][3, 5] = 42f;
            Assert.Equal(42f, pt["cls.predictions.decoder.weight"][3, 5].item<float>());
            pt["cls.predictions.bias"][7] = -1f;
            Assert.Equal(-1f, pt["cls.predictions.decoder.bias"][7].item<float>());
            // Untied entries do not share.
            pt["bert.pooler.dense.bias"].fill_(9f);
            Assert.False(pt["cls.seq_relationship.bias"].eq(9f).any().item<bool>());
        }
        finally { DisposeAll(pt); }
    }

    [Fact]
    public void Load_rebuilds_every_dtype_strided_views_offsets_and_parameters()
    {
        using var dir = new TempDir();
        var rng = new Random(7);
        var storages = new Dictionary<string, byte[]>();
        var entries = new List<TorchEntry>();
        var expected = new Dictionary<string, Tensor>();
        var kinds = new (string Storage, ScalarType Type)[]
        {
            ("FloatStorage", ScalarType.Float32), ("DoubleStorage", ScalarType.Float64), ("HalfStorage", ScalarType.Float16),
            ("BFloat16Storage", ScalarType.BFloat16), ("LongStorage", ScalarType.Int64), ("IntStorage", ScalarType.Int32),
            ("ShortStorage", ScalarType.Int16), ("CharStorage", ScalarType.Int8), ("ByteStorage", ScalarType.Byte),
            ("BoolStorage", ScalarType.Bool),
        };
        for (int k = 0; k < kinds.Length; k++)
        {
            var (storageType, dtype) = kinds[k];
            using var storage = empty([12], dtype);
            var bytes = new byte[12 * storage.ElementSize];
            rng.NextBytes(bytes);
            if (dtype == ScalarType.Bool) for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
            storage.bytes = bytes;
            storages[k.ToString()] = bytes;
            string key = k.ToString();
            // The whole storage as [3, 4]; its transpose (a non-contiguous view); a slice at an offset.
            entries.Add(new($"{storageType}.full", storageType, key, 12, 0, [3, 4], [4, 1]));
            expected[$"{storageType}.full"] = storage.reshape(3, 4).clone();
            entries.Add(new($"{storageType}.transposed", storageType, key, 12, 0, [4, 3], [1, 4]));
            expected[$"{storageType}.transposed"] = storage.reshape(3, 4).t().contiguous();
            entries.Add(new($"{storageType}.slice", storageType, key, 12, 5, [2, 3], [3, 1]));
            expected[$"{storageType}.slice"] = storage.narrow(0, 5, 6).reshape(2, 3).clone();
            entries.Add(new($"{storageType}.scalar", storageType, key, 12, 11, [], []));
            expected[$"{storageType}.scalar"] = storage[11].clone();
            entries.Add(new($"{storageType}.empty", storageType, key, 12, 12, [0, 7], [7, 1]));
            expected[$"{storageType}.empty"] = empty([0, 7], dtype);
        }
        foreach (var asParameters in new[] { false, true })
        {
            var path = dir.File($"synthetic{asParameters}.bin");
            TorchSaveWriter.Write(path, entries, storages, asParameters: asParameters);
            var loaded = PyTorchCheckpointFile.Load(path);
            try
            {
                Assert.Equal(entries.Select(e => e.Name), loaded.Keys);
                foreach (var (name, t) in expected) AssertBitEqual(t, loaded[name], name);
                Assert.False(loaded["FloatStorage.transposed"].is_contiguous());
            }
            finally { DisposeAll(loaded); }
        }
        DisposeAll(expected);
    }

    [Fact]
    public void Prefix_folder_may_have_any_name_and_storages_may_be_deflated()
    {
        using var dir = new TempDir();
        var path = dir.File("weights.pt");
        var data = new byte[4 * 1000]; // compresses well
        var pickle = TorchSaveWriter.StateDictPickle([new("w", "FloatStorage", "0", 1000, 0, [1000], [1])]);
        TorchSaveWriter.WriteZip(path, [("data.pkl", pickle), ("data/0", data)], prefix: "weights", CompressionLevel.Optimal);
        var t = PyTorchCheckpointFile.Load(path);
        Assert.True(t["w"].eq(0f).all().item<bool>());
        DisposeAll(t);
    }

    // ------------------------------------------------------------------ refusals

    private static string WritePickle(TempDir dir, byte[] pickle, string name = "pytorch_model.bin")
    {
        var path = dir.File(name);
        TorchSaveWriter.WritePickleOnly(path, pickle);
        return path;
    }

    private static void AssertLoadFails(string path, params string[] fragments)
    {
        var ex = Assert.ThrowsAny<Exception>(() => PyTorchCheckpointFile.Load(path));
        AssertMessage(ex, path, fragments);
    }

    [Fact]
    public void Pickle_referencing_builtins_eval_is_refused()
    {
        using var dir = new TempDir();
        var pickle = new PickleBuilder().Proto().Global("builtins", "eval").Str("__import__('os').system('touch pwned')")
            .Raw(0x85).Reduce().Stop().ToArray();
        var path = WritePickle(dir, pickle);
        var ex = Assert.Throws<BertSharpException>(() => PyTorchCheckpointFile.Load(path));
        Assert.Equal($"refusing to load {path}: it references builtins.eval, which a state dict never needs", ex.Message);
        Assert.False(File.Exists("pwned"));
    }

    [Fact]
    public void Pickle_referencing_os_system_is_refused_also_through_stack_global()
    {
        using var dir = new TempDir();
        var viaGlobal = new PickleBuilder().Proto().Global("os", "system").Str("ls").Raw(0x85).Reduce().Stop().ToArray();
        AssertLoadFails(WritePickle(dir, viaGlobal, "a.bin"), "refusing to load", "it references os.system");
        // Protocol 4: SHORT_BINUNICODE 'os', SHORT_BINUNICODE 'system', STACK_GLOBAL.
        var viaStack = new PickleBuilder().Proto(4).Raw(0x8c, 2).Raw("os"u8.ToArray()).Raw(0x8c, 6).Raw("system"u8.ToArray())
            .Raw(0x93).Str("ls").Raw(0x85).Reduce().Stop().ToArray();
        AssertLoadFails(WritePickle(dir, viaStack, "b.bin"), "refusing to load", "it references os.system");
        // A state dict whose tensor is rebuilt by something else.
        var other = new PickleBuilder().Proto().Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Str("w").Global("torch._utils", "_rebuild_tensor").Stop().ToArray();
        AssertLoadFails(WritePickle(dir, other, "c.bin"), "it references torch._utils._rebuild_tensor, which a state dict never needs");
    }

    [Fact]
    public void Allowed_globals_called_in_unexpected_ways_are_refused()
    {
        using var dir = new TempDir();
        var callStorage = new PickleBuilder().Proto().Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop().ToArray();
        AssertLoadFails(WritePickle(dir, callStorage, "a.bin"), "the pickle calls torch.FloatStorage, which a state dict never needs");
        var orderedDictArgs = new PickleBuilder().Proto().Global("collections", "OrderedDict").Mark().Int(1).Tuple().Reduce().Stop().ToArray();
        AssertLoadFails(WritePickle(dir, orderedDictArgs, "b.bin"), "collections.OrderedDict is called with 1 arguments");
        var badRebuild = new PickleBuilder().Proto().Global("torch._utils", "_rebuild_tensor_v2").Mark().Str("x").Tuple().Reduce().Stop().ToArray();
        AssertLoadFails(WritePickle(dir, badRebuild, "c.bin"), "torch._utils._rebuild_tensor_v2 is called with unexpected arguments (the string 'x')");
        var badPid = new PickleBuilder().Proto().Mark().Str("storage").Str("not a type").Tuple().Op('Q').Stop().ToArray();
        AssertLoadFails(WritePickle(dir, badPid, "d.bin"), "unexpected persistent id");
        var notADict = new PickleBuilder().Proto().Int(3).Stop().ToArray();
        AssertLoadFails(WritePickle(dir, notADict, "e.bin"), "holds the integer 3, not a state dict");
        var notATensor = new PickleBuilder().Proto().Op('}').Str("lr").Int(3).Op('s').Stop().ToArray();
        AssertLoadFails(WritePickle(dir, notATensor, "f.bin"), "state dict entry 'lr' is the integer 3, not a tensor");
        var buildOnList = new PickleBuilder().Proto().Op(']').Op('}').Op('b').Stop().ToArray();
        AssertLoadFails(WritePickle(dir, buildOnList, "g.bin"), "sets the state of a list of 0 items");
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 0x02, 0x4a, 0x01 }, "ends inside a BININT opcode")]
    [InlineData(new byte[] { 0x80, 0x02, 0x4e }, "ends without a STOP opcode")]
    [InlineData(new byte[] { 0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x61, 0x2e }, "ends inside a BINUNICODE opcode")]
    [InlineData(new byte[] { 0x80, 0x02, 0x58, 0x01, 0x00, 0x00, 0x00, 0xff, 0x2e }, "BINUNICODE string is not valid UTF-8")]
    [InlineData(new byte[] { 0x80, 0x02, 0x8a, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x2e }, "LONG1 integer of 9 bytes does not fit in 64 bits")]
    [InlineData(new byte[] { 0x80, 0x02, 0x68, 0x05, 0x2e }, "memo entry 5 is read before it is written")]
    [InlineData(new byte[] { 0x80, 0x02, 0x30, 0x2e }, "stack underflow")]
    [InlineData(new byte[] { 0x80, 0x02, 0x74, 0x2e }, "needs a MARK but there is none")]
    [InlineData(new byte[] { 0x80, 0x02, 0x4e, 0x4e, 0x2e }, "STOP with 2 values on the stack")]
    [InlineData(new byte[] { 0x80, 0x02, 0x4e, 0x2e, 0x00 }, "1 bytes follow the STOP opcode")]
    [InlineData(new byte[] { 0x80, 0x02, 0x69, 0x2e }, "unsupported pickle opcode 0x69 ('i')")] // INST
    [InlineData(new byte[] { 0x80, 0x02, 0x81, 0x2e }, "unsupported pickle opcode 0x81")] // NEWOBJ
    [InlineData(new byte[] { 0x80, 0x09, 0x2e }, "unsupported pickle protocol 9")]
    [InlineData(new byte[] { 0x80, 0x02, 0x63, 0x6f, 0x73, 0x0a }, "ends inside a GLOBAL opcode")]
    [InlineData(new byte[] { 0x80, 0x02, 0x5d, 0x4e, 0x4e, 0x73, 0x2e }, "SETITEM on a list of 0 items, not a dict")]
    [InlineData(new byte[] { 0x80, 0x02, 0x7d, 0x29, 0x4e, 0x73, 0x2e }, "SETITEM with a dict key that is a tuple of 0 items")]
    public void Malformed_pickles_are_refused(byte[] pickle, string expected)
    {
        using var dir = new TempDir();
        var path = WritePickle(dir, pickle);
        AssertLoadFails(path, "data.pkl is not a valid pickle", expected);
    }

    [Fact]
    public void Deeply_nested_marks_are_refused()
    {
        using var dir = new TempDir();
        var p = new PickleBuilder().Proto();
        for (int i = 0; i < 100_000; i++) p.Mark();
        AssertLoadFails(WritePickle(dir, p.ToArray()), "MARKs nested more than 100 deep");
        // Deep nesting that is not MARK-based (a tuple inside a tuple ...) is harmless: nothing recurses.
        var q = new PickleBuilder().Proto().Op('}');
        for (int i = 0; i < 100_000; i++) q.Raw(0x85);
        AssertLoadFails(WritePickle(dir, q.Stop().ToArray(), "q.bin"), "holds a tuple of 1 item, not a state dict");
    }

    [Fact]
    public void Pickles_creating_too_many_values_are_refused()
    {
        using var dir = new TempDir();
        var p = new PickleBuilder().Proto().Op('}');
        var pushPop = new byte[2 * (RestrictedUnpickler.MaxValues + 1)];
        for (int i = 0; i < pushPop.Length; i += 2) { pushPop[i] = (byte)']'; pushPop[i + 1] = (byte)'0'; }
        p.Raw(pushPop).Stop();
        AssertLoadFails(WritePickle(dir, p.ToArray()), "more than 5000000 values");
    }

    [Fact]
    public void Views_outside_their_storage_are_refused()
    {
        using var dir = new TempDir();
        void Case(string name, TorchEntry entry, string expected, long storageBytes = 48)
        {
            var path = dir.File(name);
            TorchSaveWriter.Write(path, [entry], new Dictionary<string, byte[]> { ["0"] = new byte[storageBytes] });
            AssertLoadFails(path, expected);
        }
        Case("a.bin", new("w", "FloatStorage", "0", 12, 0, [4, 4], [4, 1]), "tensor 'w': size [4,4], stride [4,1], offset 0 reaches element 15 but its storage '0' has only 12");
        Case("b.bin", new("w", "FloatStorage", "0", 12, 10, [3], [1]), "reaches element 12");
        Case("c.bin", new("w", "FloatStorage", "0", 12, -1, [3], [1]), "negative number in size [3], stride [1], offset -1");
        Case("d.bin", new("w", "FloatStorage", "0", 12, 0, [3, -1], [1, 1]), "negative number");
        Case("e.bin", new("w", "FloatStorage", "0", 12, 0, [3, 2], [1]), "size has 2 dimensions but stride has 1");
        Case("f.bin", new("w", "FloatStorage", "0", 12, 0, [1L << 40, 1L << 40], [0, 0]), "more elements than a 64-bit count holds");
        Case("g.bin", new("w", "FloatStorage", "0", 12, 0, [1L << 30, 1L << 30], [0, 0]), "has 1152921504606846976 elements, more than its storage '0' holds (12)");
        Case("h.bin", new("w", "FloatStorage", "0", 12, 0, [3], [1L << 62]), "reaches beyond a 64-bit index");
        Case("i.bin", new("w", "FloatStorage", "0", 12, 13, [0], [1]), "offset 13 is beyond its storage");
    }

    [Fact]
    public void Storage_sizes_that_do_not_match_their_entries_are_refused_before_allocating()
    {
        using var dir = new TempDir();
        var path = dir.File("a.bin");
        // Claims 10^12 floats (4 TB) in a 48-byte entry.
        TorchSaveWriter.Write(path, [new("w", "FloatStorage", "0", 1_000_000_000_000, 0, [3], [1])], new Dictionary<string, byte[]> { ["0"] = new byte[48] });
        AssertLoadFails(path, "storage '0' should hold 1000000000000 x 4 = 4000000000000 bytes (FloatStorage) but its zip entry has 48");

        var path2 = dir.File("b.bin");
        TorchSaveWriter.Write(path2, [new("w", "FloatStorage", "7", 12, 0, [3], [1])], new Dictionary<string, byte[]> { ["0"] = new byte[48] });
        AssertLoadFails(path2, "storage '7' has no zip entry 'archive/data/7'");

        var path3 = dir.File("c.bin");
        TorchSaveWriter.Write(path3,
            [new("w", "FloatStorage", "0", 12, 0, [3], [1]), new("v", "LongStorage", "0", 6, 0, [3], [1])],
            new Dictionary<string, byte[]> { ["0"] = new byte[48] });
        AssertLoadFails(path3, "storage '0' is described both as 12 x FloatStorage and as 6 x LongStorage");

        var path4 = dir.File("d.bin");
        TorchSaveWriter.Write(path4, [new("w", "FloatStorage", "0", -5, 0, [0], [1])], new Dictionary<string, byte[]> { ["0"] = [] });
        AssertLoadFails(path4, "storage '0' claims -5 elements");

        var path5 = dir.File("e.bin");
        TorchSaveWriter.Write(path5, [new("b", "BoolStorage", "0", 3, 0, [3], [1])], new Dictionary<string, byte[]> { ["0"] = [0, 1, 3] });
        AssertLoadFails(path5, "bool storage '0' has byte value 3 at element 2");
    }

    [Fact]
    public void Big_endian_checkpoints_are_refused()
    {
        using var dir = new TempDir();
        var path = dir.File("be.bin");
        TorchSaveWriter.Write(path, [new("w", "FloatStorage", "0", 1, 0, [1], [1])], new Dictionary<string, byte[]> { ["0"] = new byte[4] }, byteorder: "big");
        AssertLoadFails(path, "written on a big-endian machine");
    }

    [Fact]
    public void Truncated_fixture_gives_a_clear_error()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(FixturePath);
        foreach (var length in new[] { bytes.Length - 1, bytes.Length / 2, 100 })
        {
            var path = dir.File($"truncated{length}.bin");
            File.WriteAllBytes(path, bytes[..length]);
            AssertLoadFails(path, "not a valid zip archive, truncated or corrupt");
        }
    }

    [Fact]
    public void Corrupted_bytes_inside_an_entry_fail_the_crc_check()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(FixturePath);
        var flipped = (byte[])bytes.Clone();
        flipped[20_000] ^= 0x01; // inside pytorch_model/data/1 (the word embeddings)
        var path = dir.File("crc.bin");
        File.WriteAllBytes(path, flipped);
        AssertLoadFails(path, "zip entry 'pytorch_model/data/1' is corrupt: its CRC-32 is");

        flipped = (byte[])bytes.Clone();
        flipped[1000] ^= 0x01; // inside pytorch_model/data.pkl
        File.WriteAllBytes(path, flipped);
        AssertLoadFails(path, "zip entry 'pytorch_model/data.pkl' is corrupt");
    }

    [Fact]
    public void Zip_crc32_matches_known_values()
    {
        Assert.Equal(0u, ZipCrc32.Append(0, []));
        Assert.Equal(0xCBF43926u, ZipCrc32.Append(0, "123456789"u8));
        var data = new byte[1000];
        new Random(3).NextBytes(data);
        uint whole = ZipCrc32.Append(0, data);
        Assert.Equal(whole, ZipCrc32.Append(ZipCrc32.Append(0, data.AsSpan(0, 333)), data.AsSpan(333)));
        using var t = torch.tensor(data);
        Assert.Equal(whole, TensorBytes.Crc32(t, chunkBytes: 64));
    }

    [Fact]
    public void Non_zip_and_legacy_files_are_reported()
    {
        using var dir = new TempDir();
        var missing = dir.File("missing.bin");
        AssertLoadFails(missing, "file not found");

        var text = dir.File("text.bin");
        File.WriteAllText(text, "hello world, not a checkpoint");
        AssertLoadFails(text, "not a PyTorch checkpoint (a torch.save file is a zip archive, or a pickle in the legacy format)");

        var tiny = dir.File("tiny.bin");
        File.WriteAllBytes(tiny, [0x50]);
        AssertLoadFails(tiny, "the file is 1 bytes, too short");

        var legacy = dir.File("legacy.bin");
        File.WriteAllBytes(legacy, TorchSaveWriter.LegacyMagic);
        AssertLoadFails(legacy, "the protocol-version pickle is not a valid pickle: it ends without a STOP opcode (truncated?)");

        var pickle = dir.File("pickle.bin");
        File.WriteAllBytes(pickle, [0x80, 0x02, 0x4e, 0x2e]);
        AssertLoadFails(pickle, "starts like a pickle but not like a torch.save file");

        var noPickle = dir.File("nopickle.bin");
        TorchSaveWriter.WriteZip(noPickle, [("version", Encoding.ASCII.GetBytes("3\n"))]);
        AssertLoadFails(noPickle, "has no PREFIX/data.pkl entry");

        var twoPickles = dir.File("two.bin");
        using (var fs = File.Create(twoPickles))
        using (var zip = new ZipArchive(fs, ZipArchiveMode.Create))
        {
            zip.CreateEntry("a/data.pkl");
            zip.CreateEntry("b/data.pkl");
        }
        AssertLoadFails(twoPickles, "has 2 data.pkl entries");
    }

    // ------------------------------------------------------------------ legacy (PyTorch < 1.6) format

    /// <summary>The fixture's state dict re-expressed in the legacy layout, storages shared as in the zip file.</summary>
    private static (List<TorchEntry> Entries, List<(string Key, long Numel, byte[] Data)> Storages) FixtureAsLegacy()
    {
        var pt = PyTorchCheckpointFile.Load(FixturePath);
        try
        {
            var entries = new List<TorchEntry>();
            var storages = new List<(string Key, long Numel, byte[] Data)>();
            var tied = new Dictionary<string, string>
            {
                ["cls.predictions.decoder.weight"] = "bert.embeddings.word_embeddings.weight",
                ["cls.predictions.decoder.bias"] = "cls.predictions.bias",
            };
            var keyOf = new Dictionary<string, string>();
            foreach (var (name, t) in pt)
            {
                if (!tied.TryGetValue(name, out var owner))
                {
                    keyOf[name] = storages.Count.ToString();
                    storages.Add((keyOf[name], t.NumberOfElements, Bytes(t)));
                }
                var key = keyOf[owner ?? name];
                var type = t.dtype == ScalarType.Int64 ? "LongStorage" : "FloatStorage";
                var stride = Enumerable.Range(0, t.shape.Length).Select(i => t.shape.Skip(i + 1).Aggregate(1L, (a, b) => a * b)).ToArray();
                entries.Add(new(name, type, key, t.NumberOfElements, 0, t.shape, stride));
            }
            return (entries, storages);
        }
        finally { DisposeAll(pt); }
    }

    [Fact]
    public void Legacy_format_is_read()
    {
        using var dir = new TempDir();
        var (entries, storages) = FixtureAsLegacy();
        var path = dir.File("legacy.bin");
        TorchSaveWriter.WriteLegacy(path, entries, storages);
        var legacy = PyTorchCheckpointFile.Load(path);
        var zip = PyTorchCheckpointFile.Load(FixturePath);
        try
        {
            Assert.Equal(zip.Keys, legacy.Keys);
            foreach (var (name, t) in zip) AssertBitEqual(t, legacy[name], name);
            legacy["bert.embeddings.word_embeddings.weight"][1, 1] = 5f;
            Assert.Equal(5f, legacy["cls.predictions.decoder.weight"][1, 1].item<float>());
        }
        finally
        {
            DisposeAll(legacy);
            DisposeAll(zip);
        }
    }

    [Fact]
    public void Legacy_format_with_pickles_larger_than_the_first_read_is_read()
    {
        using var dir = new TempDir();
        var longName = new string('w', 3_000_000);
        var path = dir.File("big-pickle.bin");
        TorchSaveWriter.WriteLegacy(path, [new(longName, "FloatStorage", "0", 2, 0, [2], [1])],
            [("0", 2, BitConverter.GetBytes(1.5f).Concat(BitConverter.GetBytes(-2f)).ToArray())]);
        var t = PyTorchCheckpointFile.Load(path);
        Assert.Equal(new[] { 1.5f, -2f }, t[longName].data<float>().ToArray());
        DisposeAll(t);
    }

    [Fact]
    public void Legacy_format_errors_are_reported()
    {
        using var dir = new TempDir();
        var (entries, storages) = FixtureAsLegacy();
        var path = dir.File("legacy.bin");
        TorchSaveWriter.WriteLegacy(path, entries, storages);
        var bytes = File.ReadAllBytes(path);

        var truncated = dir.File("truncated.bin");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 3)]);
        AssertLoadFails(truncated, "storage '46' needs 8 bytes but the file has only 5 left (truncated?)");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 10)]);
        AssertLoadFails(truncated, "the file ends before storage '46' (truncated?)");
        File.WriteAllBytes(truncated, bytes[..3000]);
        AssertLoadFails(truncated, "the state-dict pickle is not a valid pickle", "(truncated?)");

        var count = dir.File("count.bin");
        TorchSaveWriter.WriteLegacy(count, entries, storages, countOverride: 1L << 50);
        AssertLoadFails(count, "storage '0' should hold 128 elements (LongStorage) but its record says 1125899906842624");

        var bigEndian = dir.File("be.bin");
        TorchSaveWriter.WriteLegacy(bigEndian, entries, storages, littleEndian: false);
        AssertLoadFails(bigEndian, "written on a big-endian machine");

        var twice = dir.File("twice.bin");
        TorchSaveWriter.WriteLegacy(twice, entries, [.. storages, storages[0]]);
        AssertLoadFails(twice, "lists '0' twice");

        var unknown = dir.File("unknown.bin");
        TorchSaveWriter.WriteLegacy(unknown, entries, [.. storages, ("999", 1, new byte[4])]);
        AssertLoadFails(unknown, "lists '999', which no tensor references");

        var missing = dir.File("missing.bin");
        TorchSaveWriter.WriteLegacy(missing, entries, storages[1..]);
        AssertLoadFails(missing, "storage '0' is referenced but not in the storage-keys list");

        var evil = dir.File("evil.bin");
        var evilPickle = new PickleBuilder().Proto().Global("os", "system").Str("ls").Raw(0x85).Reduce().Stop().ToArray();
        TorchSaveWriter.WriteLegacy(evil, entries, storages, mainPickle: evilPickle);
        var ex = Assert.Throws<BertSharpException>(() => PyTorchCheckpointFile.Load(evil));
        Assert.Equal($"refusing to load {evil}: it references os.system, which a state dict never needs", ex.Message);

        var view = dir.File("view.bin");
        var viewPickle = new PickleBuilder().Proto().Op('}').Str("w").Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(2).Mark().Str("v").Int(0).Int(1).Tuple().Tuple().Op('Q')
            .Int(0).IntTuple([1]).IntTuple([1]).False().Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce()
            .Op('s').Stop().ToArray();
        TorchSaveWriter.WriteLegacy(view, [], [("0", 2, new byte[8])], mainPickle: viewPickle);
        AssertLoadFails(view, "storage '0' is a storage view");
    }
}
