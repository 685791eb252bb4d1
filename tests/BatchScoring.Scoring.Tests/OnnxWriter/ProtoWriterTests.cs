using BatchScoring.Scoring.OnnxWriter;

namespace BatchScoring.Scoring.Tests.OnnxWriter;

public class ProtoWriterTests
{
    [Fact]
    public void Varint_field_matches_protobuf_encoding()
    {
        // The protobuf documentation's example: field 1 = 150 encodes as 08 96 01.
        var w = new ProtoWriter();
        w.WriteInt64(1, 150);
        Assert.Equal(new byte[] { 0x08, 0x96, 0x01 }, w.ToArray());
    }

    [Fact]
    public void Negative_int64_takes_ten_bytes()
    {
        var w = new ProtoWriter();
        w.WriteInt64(2, -1);
        var bytes = w.ToArray();
        Assert.Equal(11, bytes.Length);
        Assert.Equal(0x10, bytes[0]);
        Assert.Equal(0x01, bytes[^1]);
        Assert.All(bytes[1..^1], b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public void String_and_nested_message_are_length_delimited()
    {
        var w = new ProtoWriter();
        w.WriteMessage(3, nested => nested.WriteString(2, "testing"));
        // 1a 09 | 12 07 "testing"
        Assert.Equal(new byte[] { 0x1A, 0x09, 0x12, 0x07, (byte)'t', (byte)'e', (byte)'s', (byte)'t', (byte)'i', (byte)'n', (byte)'g' }, w.ToArray());
    }

    [Fact]
    public void Packed_repeated_fields_carry_one_length_prefix()
    {
        var w = new ProtoWriter();
        w.WritePackedInt64(4, [3, 270, 86942]);
        Assert.Equal(new byte[] { 0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05 }, w.ToArray());

        var f = new ProtoWriter();
        f.WritePackedFloat(1, [1f, -2f]);
        Assert.Equal(new byte[] { 0x0A, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0 }, f.ToArray());
    }

    [Fact]
    public void Empty_packed_field_is_omitted()
    {
        var w = new ProtoWriter();
        w.WritePackedInt64(1, []);
        w.WritePackedFloat(2, []);
        Assert.Equal(0, w.Length);
    }

    [Fact]
    public void Large_payload_grows_the_buffer()
    {
        var w = new ProtoWriter();
        var data = Enumerable.Range(0, 10_000).Select(i => (float)i).ToArray();
        w.WritePackedFloat(4, data);
        // tag (1) + varint(40000) (3) + payload
        Assert.Equal(1 + 3 + 40_000, w.Length);
    }
}
