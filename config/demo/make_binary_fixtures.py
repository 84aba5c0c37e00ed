#!/usr/bin/env python3
"""Generate the non-text demo documents in config/demo/content/.

Run from anywhere:  python3 config/demo/make_binary_fixtures.py

Standard library only. The output is deterministic (fixed timestamps), so running the
script again gives byte-identical files; the generated files are committed.

It writes three files whose bytes cannot reasonably be typed by hand:

* personalehaandbog/Retningslinjer/Rygepolitik.pdf
    A small PDF (PDF 1.4) with Danish text. It uses the standard Type 1 font Helvetica
    with /WinAnsiEncoding and the text is written as Windows-1252 bytes, so æ, ø, å, Æ, Ø
    and Å are real glyphs that any PDF text extractor can map back to Unicode.
* personalehaandbog/Retningslinjer/Alkoholpolitik.docx
    A minimal valid OOXML word-processing package: [Content_Types].xml, _rels/.rels,
    word/document.xml and docProps/core.xml (with dc:title and dc:creator).
* it-hjaelp/gammel-side-printer-i-aarhus.html
    A legacy page saved as Windows-1252 bytes with NO charset declaration (no <meta
    charset>, no BOM, no XML declaration). It shows that pages in old encodings are
    still searchable after the encoding has been detected.

All text is fictional and was written for the Samle demo.
"""

from __future__ import annotations

import pathlib
import textwrap
import zipfile
import zlib

CONTENT = pathlib.Path(__file__).resolve().parent / "content"

# --------------------------------------------------------------------------------------
# Rygepolitik.pdf
# --------------------------------------------------------------------------------------

RYGEPOLITIK_TITLE = "Rygepolitik for Samle Kommune"

# (kind, text): kind is "h1", "h2" or "p". Bullets are paragraphs starting with "- ".
RYGEPOLITIK = [
    ("h1", RYGEPOLITIK_TITLE),
    ("p", "Gældende fra 1. januar 2025. Vedtaget i Hovedudvalget den 12. november 2024."),
    ("h2", "Formål"),
    ("p", "Samle Kommune ønsker at være en sund arbejdsplads, hvor ingen medarbejdere, "
          "borgere eller gæster udsættes for passiv rygning. Rygepolitikken skal også "
          "støtte de medarbejdere, der ønsker at holde op med at ryge."),
    ("h2", "Røgfri arbejdstid"),
    ("p", "Alle medarbejdere har røgfri arbejdstid. Det betyder, at du ikke må ryge i din "
          "arbejdstid, heller ikke i pauserne, og uanset om du er på rådhuset, på en "
          "institution, hjemme hos en borger eller på tjenesterejse. Forbuddet gælder "
          "cigaretter, cigarer, pibe, e-cigaretter og andre produkter, der udvikler røg "
          "eller damp."),
    ("p", "Det er desuden forbudt at ryge på alle kommunens matrikler, herunder på "
          "parkeringspladser, i skolegårde og på legepladser. Det gælder også for gæster "
          "og borgere. Rygeforbuddet er skiltet ved indgangene."),
    ("h2", "Arbejde i borgerens hjem"),
    ("p", "Medarbejdere i hjemmeplejen og andre, der arbejder i borgernes hjem, har ret "
          "til et røgfrit arbejdsmiljø. Borgeren bliver bedt om ikke at ryge i den time, "
          "der går forud for besøget, og om at lufte ud. Lederen aftaler de nærmere "
          "forhold med borgeren og skriver dem ind i besøgsplanen."),
    ("h2", "Hjælp til rygestop"),
    ("p", "Kommunen tilbyder gratis rygestopforløb i samarbejde med Sundhedscentret. "
          "Forløbet består af seks møder, som du kan deltage i, i din arbejdstid. "
          "Deltagerne får tilskud til nikotinerstatning i de første otte uger. "
          "Tilmelding sker hos din leder eller direkte hos Sundhedscentret."),
    ("h2", "Hvis politikken ikke overholdes"),
    ("p", "Overtrædelse af rygepolitikken behandles som enhver anden overtrædelse af "
          "kommunens retningslinjer. Første gang tager din nærmeste leder en samtale med "
          "dig. Gentagne overtrædelser kan få ansættelsesretlige konsekvenser, fx en "
          "skriftlig advarsel."),
    ("h2", "Kontakt"),
    ("p", "Spørgsmål om rygepolitikken kan rettes til HR og Sundhedsfremme, lokal 2260, "
          "sundhed@kommune.example."),
]


def _pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsiEncoding (Windows-1252), escaped."""
    raw = text.encode("cp1252")
    out = bytearray(b"(")
    for b in raw:
        if b in (0x28, 0x29, 0x5C):  # ( ) \
            out += b"\\" + bytes([b])
        else:
            out.append(b)
    out += b")"
    return bytes(out)


def _layout(blocks):
    """Turn blocks into pages of (font, size, x, y, text) lines on A4 portrait."""
    width, height = 595, 842
    left, top, bottom = 64, 780, 64
    pages, current, y = [], [], top
    for kind, text in blocks:
        if kind == "h1":
            size, font, wrap, before, leading = 18, "F2", 55, 0, 24
        elif kind == "h2":
            size, font, wrap, before, leading = 12, "F2", 75, 10, 16
        else:
            size, font, wrap, before, leading = 10.5, "F1", 92, 2, 14
        lines = textwrap.wrap(text, wrap)
        y -= before
        for line in lines:
            if y - leading < bottom:
                pages.append(current)
                current, y = [], top
            current.append((font, size, left, y, line))
            y -= leading
    if current:
        pages.append(current)
    return width, height, pages


def make_pdf(path: pathlib.Path) -> None:
    width, height, pages = _layout(RYGEPOLITIK)
    objects: list[bytes] = []  # object n is objects[n-1]

    def add(obj: bytes) -> int:
        objects.append(obj)
        return len(objects)

    catalog = add(b"")  # placeholder, filled in below
    pages_obj = add(b"")
    font_regular = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                       b"/Encoding /WinAnsiEncoding >>")
    font_bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
                    b"/Encoding /WinAnsiEncoding >>")
    page_ids = []
    for lines in pages:
        ops = []
        for font, size, x, y, text in lines:
            ops.append(b"BT /%s %s Tf %d %d Td %s Tj ET" % (
                font.encode(), str(size).encode(), x, y, _pdf_string(text)))
        stream = zlib.compress(b"\n".join(ops) + b"\n", 9)
        content = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
                      + stream + b"\nendstream")
        page_ids.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> /Contents %d 0 R >>"
            % (pages_obj, width, height, font_regular, font_bold, content)))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R /Lang (da-DK) >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % p for p in page_ids), len(page_ids))
    info = add(b"<< /Title (Rygepolitik for Samle Kommune) /Author (Samle Kommune, HR) "
               b"/Subject (Personalehaandbog - retningslinjer) "
               b"/Producer (make_binary_fixtures.py) "
               b"/CreationDate (D:20241112090000+01'00') >>")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += (b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, catalog, info, xref))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))


# --------------------------------------------------------------------------------------
# Alkoholpolitik.docx
# --------------------------------------------------------------------------------------

ALKOHOLPOLITIK_TITLE = "Alkoholpolitik for Samle Kommune"

ALKOHOLPOLITIK = [
    ("h1", ALKOHOLPOLITIK_TITLE),
    ("p", "Gældende fra 1. marts 2024. Politikken gælder alle medarbejdere og ledere i "
          "Samle Kommune og er drøftet i Hovedudvalget."),
    ("h2", "Formål"),
    ("p", "Alkohol og arbejde hører ikke sammen. Politikken skal sikre, at borgerne møder "
          "ædru medarbejdere, at ingen kommer til skade, og at vi hjælper kolleger, der "
          "har problemer med alkohol, i stedet for at se den anden vej."),
    ("h2", "Alkohol i arbejdstiden"),
    ("p", "Det er ikke tilladt at drikke alkohol i arbejdstiden eller at møde påvirket "
          "på arbejde. Det gælder også i frokostpausen og ved møder uden for "
          "arbejdspladsen. Brug af euforiserende stoffer er altid forbudt."),
    ("p", "Der kan gøres undtagelser ved særlige lejligheder som jubilæer, afskedsreceptioner "
          "og julefrokoster. Lederen skal godkende det på forhånd, og der skal altid være "
          "alkoholfrie drikkevarer. Ved receptioner i arbejdstiden serveres højst ét glas "
          "vin eller øl pr. person."),
    ("p", "Der gælder nultolerance for medarbejdere, der fører kommunens biler, betjener "
          "maskiner eller har ansvar for børn og borgere."),
    ("h2", "Hvis en medarbejder er påvirket"),
    ("p", "Møder en medarbejder påvirket op, sender lederen vedkommende hjem og sørger for "
          "sikker transport. Medarbejderen må ikke selv køre. Lederen indkalder til en "
          "samtale, så snart medarbejderen er ædru, typisk dagen efter."),
    ("h2", "Hjælp til medarbejdere med et alkoholproblem"),
    ("p", "Har lederen eller kolleger mistanke om et alkoholproblem, holder lederen en "
          "omsorgssamtale med medarbejderen. Kommunen tilbyder gratis og anonym "
          "rådgivning og betaler for behandling via sundhedsordningen. Medarbejderen og "
          "lederen kan indgå en skriftlig aftale om behandling og opfølgning."),
    ("p", "Ønsker medarbejderen ikke at tage imod hjælp, og fortsætter problemerne, kan det "
          "få ansættelsesretlige konsekvenser, herunder advarsel og afskedigelse."),
    ("h2", "Kollegernes ansvar"),
    ("p", "Det er ikke at sladre at sige fra. Er du bekymret for en kollega, så tal med "
          "vedkommende eller med din leder, din tillidsrepræsentant eller din "
          "arbejdsmiljørepræsentant."),
    ("h2", "Kontakt"),
    ("p", "HR og Sundhedsfremme, lokal 2260, sundhed@kommune.example."),
]

# Fixed timestamp so the zip is byte-identical on every run.
ZIP_DATE = (2024, 3, 1, 9, 0, 0)


def _xml_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def _docx_paragraph(kind: str, text: str) -> str:
    t = _xml_escape(text)
    if kind == "h1":
        rpr = '<w:rPr><w:b/><w:sz w:val="36"/></w:rPr>'
        ppr = '<w:pPr><w:spacing w:after="240"/><w:outlineLvl w:val="0"/></w:pPr>'
    elif kind == "h2":
        rpr = '<w:rPr><w:b/><w:sz w:val="26"/></w:rPr>'
        ppr = '<w:pPr><w:spacing w:before="240" w:after="80"/><w:outlineLvl w:val="1"/></w:pPr>'
    else:
        rpr = '<w:rPr><w:sz w:val="22"/></w:rPr>'
        ppr = '<w:pPr><w:spacing w:after="120"/></w:pPr>'
    return f'<w:p>{ppr}<w:r>{rpr}<w:t xml:space="preserve">{t}</w:t></w:r></w:p>'


def make_docx(path: pathlib.Path) -> None:
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '</Types>')
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="word/document.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
        'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        '</Relationships>')
    body = "".join(_docx_paragraph(k, t) for k, t in ALKOHOLPOLITIK)
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f'<w:body>{body}'
        '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/>'
        '<w:pgMar w:top="1440" w:right="1304" w:bottom="1440" w:left="1304" '
        'w:header="708" w:footer="708" w:gutter="0"/></w:sectPr>'
        '</w:body></w:document>')
    core = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties '
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<dc:title>{_xml_escape(ALKOHOLPOLITIK_TITLE)}</dc:title>'
        '<dc:creator>Samle Kommune, HR og Sundhedsfremme</dc:creator>'
        '<dc:language>da-DK</dc:language>'
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-03-01T09:00:00Z</dcterms:created>'
        '<dcterms:modified xsi:type="dcterms:W3CDTF">2024-03-01T09:00:00Z</dcterms:modified>'
        '</cp:coreProperties>')
    parts = [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", rels),
        ("word/document.xml", document),
        ("docProps/core.xml", core),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in parts:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, text.encode("utf-8"))


# --------------------------------------------------------------------------------------
# gammel-side-printer-i-aarhus.html (Windows-1252, no charset declaration)
# --------------------------------------------------------------------------------------

# Deliberately old-fashioned markup (2009 era). Note the spelling "Århus", which the city
# used until 2011: a search for "Aarhus" should still find this page. The text uses
# characters that exist in Windows-1252 but not in ISO-8859-1 (– € „ “) on purpose.
LEGACY_PAGE = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<HTML>
<HEAD>
<TITLE>Printere og scanning på kontoret i Århus</TITLE>
</HEAD>
<BODY BGCOLOR="#FFFFFF">
<TABLE WIDTH="100%" BORDER="0" CELLPADDING="4">
<TR><TD BGCOLOR="#003366"><FONT COLOR="#FFFFFF" FACE="Verdana"><B>SAMLE KOMMUNE – IT-AFDELINGEN</B></FONT></TD></TR>
<TR><TD><FONT FACE="Verdana" SIZE="1"><A HREF="index.htm">Forside</A> | <A HREF="printere.htm">Printere</A> | <A HREF="telefoni.htm">Telefoni</A> | <A HREF="kontakt.htm">Kontakt IT</A></FONT></TD></TR>
</TABLE>
<FONT FACE="Verdana" SIZE="2">
<H2>Printere og scanning på kontoret i Århus</H2>
<P><I>Arkiveret side. Siden er overført fra det gamle intranet og er ikke længere vedligeholdt. Oplysningerne kan være forældede – kontakt IT-hjælp, hvis du er i tvivl.</I></P>

<P>Samle Kommune har seks medarbejdere udstationeret i det fælleskommunale indkøbskontor på Åboulevarden i Århus. Kontoret deler printere med de øvrige kommuner i samarbejdet. Denne side beskriver, hvordan du får adgang til printerne og scanneren i Århus, og hvad du gør, når der opstår fejl.</P>

<H3>PRINTERNE PÅ 2. SAL</H3>
<P>Der står to printere på 2. sal: en sort-hvid laserprinter ved køkkenet (»PRN-2-SH«) og en farveprinter i kopirummet bag mødelokale Ærø (»PRN-2-FARVE«). Begge printere kan bruges fra Samle Kommunes bærbare computere, når du er på kontorets netværk.</P>
<OL>
<LI>Åbn »Printere og faxenheder« i Kontrolpanel.</LI>
<LI>Vælg »Tilføj printer« og skriv navnet på printeren, fx \\\\PRINTSRV01\\PRN-2-SH.</LI>
<LI>Når du udskriver første gang, skal du indtaste din afdelingskode. Koden får du af kontorets sekretær.</LI>
</OL>

<H3>SCANNING</H3>
<P>Farveprinteren kan også scanne. Vælg »Scan til e-mail« på displayet og skriv din e-mailadresse. Bemærk, at scanneren ikke kan sende til adresser uden for samarbejdets domæner. Store dokumenter (over 20 sider) bør scannes i flere omgange, ellers løber hukommelsen fuld.</P>

<H3>ÆNDRINGER OG FEJL</H3>
<P>Ønsker du ændringer i printeropsætningen, eller står printeren med en fejlmelding, skal du kontakte den lokale IT-ansvarlige i Århus på lokal 7730. Fejl på Samle Kommunes egne computere meldes som altid til IT-hjælp på rådhuset.</P>
<P>Tonerpatroner bestilles hos sekretæren. En ny patron til farveprinteren koster ca. 1.150 kr. (ca. 155 €), og udgiften fordeles mellem kommunerne efter antallet af udskrifter. Vær derfor sparsom med farveudskrifter – „sort-hvid er standard“.</P>

<H3>SÆRLIGE FORHOLD FOR FORTROLIGE PAPIRER</H3>
<P>Printerne i Århus har ikke sikker udskrift. Udskriv derfor ikke dokumenter med CPR-numre eller andre følsomme personoplysninger på kontoret. Glemte udskrifter lægges i den aflåste kasse ved køkkenet og makuleres hver fredag.</P>
</FONT>
<HR>
<FONT FACE="Verdana" SIZE="1">Samle Kommune · IT-afdelingen · Senest ændret 14. september 2009 af Bjørn Æbelø · <A HREF="mailto:it@kommune.example">Skriv til IT-afdelingen</A></FONT>
</BODY>
</HTML>
"""


def make_legacy_html(path: pathlib.Path) -> None:
    data = LEGACY_PAGE.replace("\n", "\r\n").encode("cp1252")
    assert b"charset" not in data.lower() and not data.startswith(b"\xef\xbb\xbf")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main() -> None:
    targets = [
        (CONTENT / "personalehaandbog" / "Retningslinjer" / "Rygepolitik.pdf", make_pdf),
        (CONTENT / "personalehaandbog" / "Retningslinjer" / "Alkoholpolitik.docx", make_docx),
        (CONTENT / "it-hjaelp" / "gammel-side-printer-i-aarhus.html", make_legacy_html),
    ]
    for path, make in targets:
        make(path)
        print(f"wrote {path.relative_to(CONTENT.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
