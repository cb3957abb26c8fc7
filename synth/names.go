package synth

// Name parts. Patients and staff get a random given name and family name
// from these lists, so no generated person is anyone real except by
// coincidence of common names. Non-ASCII spellings are deliberate: the
// pipeline must carry them unchanged.
var (
	givenFemale = []string{
		"Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophie", "Emily", "Lily", "Freya",
		"Siobhán", "Zoë", "Aoife", "Niamh", "Róisín", "Chloé", "Renée", "Małgorzata", "Agnieszka", "Zofia",
		"Aisha", "Fatima", "Priya", "Ananya", "Mei", "Ngozi", "Amara", "Eilidh", "Catrìona", "Bethan",
		"Margaret", "Jean", "Patricia", "Susan", "Helen", "Dorothy", "Joan", "Elsie", "Maureen", "Sinéad",
		"Ffion", "Carys", "Anaïs", "Inês", "Léa", "Björk", "Ewa", "Hannah", "Rachel", "Noor",
	}
	givenMale = []string{
		"Oliver", "George", "Noah", "Arthur", "Harry", "Leo", "Jack", "Charlie", "Oscar", "Jacob",
		"Seán", "Ciarán", "Oisín", "Pádraig", "Łukasz", "Bartłomiej", "Paweł", "Jiří", "José", "François",
		"Mohammed", "Ahmed", "Yusuf", "Rahul", "Arjun", "Chinedu", "Kwame", "Hamish", "Ruaridh", "Dafydd",
		"John", "David", "Michael", "Peter", "Robert", "Kenneth", "Brian", "Derek", "Raymond", "Eóin",
		"Rhys", "Gareth", "Søren", "Zoltán", "Matthías", "Tomás", "Luís", "Daniel", "Samuel", "Ibrahim",
	}
	familyNames = []string{
		"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
		"Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
		"Patel", "Khan", "Begum", "Ahmed", "Hussain", "Ali", "Singh", "Kaur", "Shah", "Chowdhury",
		"O'Connor", "O'Brien", "Ó Briain", "Mac Giolla Phádraig", "Ní Dhomhnaill", "McLaughlin", "Murphy", "Kelly", "Byrne", "Ryan",
		"Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Łukaszewicz", "Dąbrowska", "Müller", "Schröder", "García", "Núñez",
		"Nguyen", "Chen", "Wong", "Okafor", "Mensah", "Adeyemi", "Brontë", "Lloyd-Hughes", "Ap Rhys", "Fitzgerald",
	}
	femalePrefixes = []string{"Mrs", "Ms", "Miss", "Dr"}
	malePrefixes   = []string{"Mr", "Mr", "Mr", "Dr"}
)

// Address parts: invented street names in real-sounding towns, with
// postcodes whose outward code belongs to the town and whose inward code is
// random.
var (
	streetFirst = []string{
		"Acorn", "Bramble", "Wren", "Larkspur", "Foxglove", "Heron", "Kestrel", "Meadowsweet", "Thistle", "Rowan",
		"Juniper", "Sorrel", "Pipit", "Teasel", "Campion", "Linnet", "Bracken", "Celandine", "Yarrow", "Dunnock",
	}
	streetSuffix = []string{"Lane", "Close", "Road", "Street", "Avenue", "Grove", "Way", "Crescent", "Drive", "Mews", "Gardens", "Terrace"}
	towns        = []town{
		{"Leeds", "West Yorkshire", []string{"LS1", "LS6", "LS7", "LS8", "LS11", "LS17"}, "0113 496"},
		{"Sheffield", "South Yorkshire", []string{"S1", "S6", "S10", "S11", "S17"}, "0114 496"},
		{"Manchester", "Greater Manchester", []string{"M1", "M14", "M20", "M21"}, "0161 496"},
		{"Bristol", "Bristol", []string{"BS1", "BS3", "BS6", "BS7"}, "0117 496"},
		{"Newcastle upon Tyne", "Tyne and Wear", []string{"NE1", "NE2", "NE4", "NE6"}, "0191 498"},
		{"Nottingham", "Nottinghamshire", []string{"NG1", "NG5", "NG7", "NG9"}, "0115 496"},
		{"London", "Greater London", []string{"N1", "E8", "SE15", "SW9", "NW5"}, "020 7946"},
		{"Hartlepool", "County Durham", []string{"TS24", "TS25", "TS26", "TS27"}, "0191 498"},
	}
	inwardLetters = "ABDEFGHJLNPQRSTUWXYZ"
)

// town is a place with its postcode districts and a fictional (Ofcom drama)
// telephone number prefix.
type town struct {
	Name, County string
	Districts    []string
	Phone        string
}
