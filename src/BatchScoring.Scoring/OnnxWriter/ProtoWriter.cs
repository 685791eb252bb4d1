using System.Buffers.Binary;
using System.Text;

namespace BatchScoring.Scoring.OnnxWriter;

/// <summary>Protobuf wire types used by the ONNX messages we emit.</summary>
public enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

/// <summary>
/// A minimal protobuf (proto2/proto3 wire format) encoder: varints, fixed32/64, length-delimited
/// fields and packed repeated scalars. Nested messages are written into their own writer and then
/// copied in as a length-delimited field.
/// </summary>
public sealed class ProtoWriter
{
    private byte[] _buffer = new byte[256];
    private int _length;

    public int Length => _length;

    public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public void WriteTag(int field, WireType wireType)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(field, 1);
        WriteRawVarint(((ulong)field << 3) | (uint)wireType);
    }

    public void WriteRawVarint(ulong value)
    {
        EnsureCapacity(10);
        while (value >= 0x80)
        {
            _buffer[_length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _buffer[_length++] = (byte)value;
    }

    public static int VarintSize(ulong value)
    {
        var size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }

        return size;
    }

    /// <summary>int64/int32/enum/bool fields: negative numbers take ten bytes (two's complement), as protobuf specifies.</summary>
    public void WriteInt64(int field, long value)
    {
        WriteTag(field, WireType.Varint);
        WriteRawVarint(unchecked((ulong)value));
    }

    public void WriteInt32(int field, int value) => WriteInt64(field, value);

    public void WriteBool(int field, bool value) => WriteInt64(field, value ? 1 : 0);

    public void WriteFloat(int field, float value)
    {
        WriteTag(field, WireType.Fixed32);
        EnsureCapacity(4);
        BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(_length), value);
        _length += 4;
    }

    public void WriteDouble(int field, double value)
    {
        WriteTag(field, WireType.Fixed64);
        EnsureCapacity(8);
        BinaryPrimitives.WriteDoubleLittleEndian(_buffer.AsSpan(_length), value);
        _length += 8;
    }

    public void WriteBytes(int field, ReadOnlySpan<byte> value)
    {
        WriteTag(field, WireType.LengthDelimited);
        WriteRawVarint((ulong)value.Length);
        WriteRaw(value);
    }

    public void WriteString(int field, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        WriteBytes(field, Encoding.UTF8.GetBytes(value));
    }

    /// <summary>Writes a nested message produced by <paramref name="write"/> as a length-delimited field.</summary>
    public void WriteMessage(int field, Action<ProtoWriter> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var nested = new ProtoWriter();
        write(nested);
        WriteBytes(field, nested.WrittenSpan);
    }

    public void WritePackedInt64(int field, ReadOnlySpan<long> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        var size = 0;
        foreach (var v in values)
        {
            size += VarintSize(unchecked((ulong)v));
        }

        WriteTag(field, WireType.LengthDelimited);
        WriteRawVarint((ulong)size);
        foreach (var v in values)
        {
            WriteRawVarint(unchecked((ulong)v));
        }
    }

    public void WritePackedInt32(int field, ReadOnlySpan<int> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        var longs = new long[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            longs[i] = values[i];
        }

        WritePackedInt64(field, longs);
    }

    public void WritePackedFloat(int field, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        WriteTag(field, WireType.LengthDelimited);
        WriteRawVarint((ulong)(values.Length * 4));
        EnsureCapacity(values.Length * 4);
        foreach (var v in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(_length), v);
            _length += 4;
        }
    }

    public void WritePackedDouble(int field, ReadOnlySpan<double> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        WriteTag(field, WireType.LengthDelimited);
        WriteRawVarint((ulong)(values.Length * 8));
        EnsureCapacity(values.Length * 8);
        foreach (var v in values)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(_buffer.AsSpan(_length), v);
            _length += 8;
        }
    }

    private void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        EnsureCapacity(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    private void EnsureCapacity(int extra)
    {
        var needed = _length + extra;
        if (needed <= _buffer.Length)
        {
            return;
        }

        var size = Math.Max(needed, _buffer.Length * 2);
        Array.Resize(ref _buffer, size);
    }
}
